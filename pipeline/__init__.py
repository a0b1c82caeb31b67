"""rubricforge: rules, then the engine, then teachers and output, then (in `stages/`) the
stages and sources, then the build, plan, estimate and CLI here at the top."""
