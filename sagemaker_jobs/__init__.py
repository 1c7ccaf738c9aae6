"""SageMaker processing: the pipeline definitions and the job entry points.

Each entry point adapts ``/opt/ml/processing/...`` paths (see ``paths``) to one function of
``ltvcore.workflow.steps``; all forecasting logic stays in ``ltvcore``.
"""
