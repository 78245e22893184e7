"""The pipeline, one module per stage: ingest → chunk → embed → index → retrieve → answer."""
