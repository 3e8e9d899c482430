"""What the viewer runs: the model file, the engine and one backend module per runtime (no training code).

torch is imported only by the torch backend, and only when it is chosen.
"""
