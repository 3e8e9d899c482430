"""Models and their runtime: `runtime/` is what the viewer needs, `training/` makes and scores models,
`models/` holds the networks (never imports Qt; torch only in models, training and the torch backend)."""
