"""Making and judging models: data, augmentation, losses, recipes, training, evaluation through the
runtime's engine, export, quantisation and model cards (torch is imported here, never by the viewer)."""
