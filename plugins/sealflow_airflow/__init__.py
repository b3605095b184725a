"""SealFlow's Airflow glue: hooks that build domain objects from Airflow connections, operators and
the per-task functions of the pipeline DAGs. Domain packages (stamping, archive, filing) never import
Airflow; this package is the only bridge."""
