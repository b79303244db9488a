"""Fine-Tune Studio: point-and-click LLM fine-tuning, offline-first.

The `studio` package holds all logic; only `studio.ui` imports gradio. Importing this package is
cheap on purpose (no torch, no transformers) so that the app answers HTTP within seconds.
"""

__version__ = "0.1.0"
