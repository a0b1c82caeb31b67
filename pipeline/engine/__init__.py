"""The engine: config, the row schema, the stage contract, the Ray session and the runner that
applies a stage to a dataset; plus the plug-in discovery, storage and input reading it uses.
It knows no particular stage, source, teacher or output format."""
