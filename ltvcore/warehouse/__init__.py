"""The data path: input files and warehouses read by DuckDB, aggregated in SQL.

Raw events never reach pandas: DuckDB validates and sums them per user and day
(:mod:`~ltvcore.warehouse.events`), joins them to installs and hands the models integer and float
arrays (:mod:`~ltvcore.warehouse.model_data`). The daily aggregates of a warehouse
(:mod:`~ltvcore.warehouse.store`) are written by the same SQL (``sql/``) on DuckDB locally and on
Athena on AWS.
"""
