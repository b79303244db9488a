"""The Gradio UI: one thin module per tab. Only this package imports gradio."""
