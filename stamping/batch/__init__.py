"""Batches of certificates (电子证照) to stamp: manifest checks, ingest, chunked stamping and
verification, seal-use approval (用章审批) and the batch report. Never imports Airflow."""
