"""Asking teacher models: the backend interface and one module per backend (`backends/`), the
client, the durable cache, the RPM/TPM budget, spend meters, progress, and the teacher-stage
base class the judging stages build on."""
