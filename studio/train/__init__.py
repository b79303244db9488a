"""The training worker: `python -m studio.train RUN_DIR [--resume]`.

`worker` runs the stages of a run folder's config and keeps status.json / metrics.jsonl current;
`build` maps a RunConfig to transformers/peft/TRL objects; `stages` builds one TRL trainer per
method; `callbacks` writes metrics and honours Stop; `cli` is `python -m studio train`.
Nothing here is imported by the app at start-up.
"""
