"""One home for orchestration: from input files to a published, reproducible run.

- :mod:`~ltvcore.workflow.forecast`: read and validate inputs, cut at as-of, fit, forecast;
- :mod:`~ltvcore.workflow.artifacts`: the run's files (outputs, input snapshot);
- :mod:`~ltvcore.workflow.run`: snapshot → run id → forecast → publish (manifest last), locally;
- :mod:`~ltvcore.workflow.steps`: the same as separate steps on directories (the processing jobs);
- :mod:`~ltvcore.workflow.backtest` and :mod:`~ltvcore.workflow.reproduce`.
"""
