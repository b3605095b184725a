# SealFlow on the official Airflow image: the project (domain packages + CLI) installed into the
# image's Python, DAGs and the Airflow glue (plugins/) baked in. docker-compose.yml builds it once
# and runs every Airflow component and the platform simulator from it.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

ENV SEALFLOW_HOME=/opt/sealflow/var \
    AWS_REQUEST_CHECKSUM_CALCULATION=when_required \
    AWS_RESPONSE_CHECKSUM_VALIDATION=when_required

USER root
RUN mkdir -p /opt/sealflow/var /opt/sealflow/platform && chmod 700 /opt/sealflow/var && chown -R airflow:0 /opt/sealflow
USER airflow

COPY --chown=airflow:0 pyproject.toml README.md /opt/sealflow/
COPY --chown=airflow:0 gmpki /opt/sealflow/gmpki
COPY --chown=airflow:0 kernel /opt/sealflow/kernel
COPY --chown=airflow:0 sealflow /opt/sealflow/sealflow
COPY --chown=airflow:0 stamping /opt/sealflow/stamping
COPY --chown=airflow:0 archive /opt/sealflow/archive
COPY --chown=airflow:0 filing /opt/sealflow/filing
COPY --chown=airflow:0 backup /opt/sealflow/backup

# Pin the image's Airflow so installing SealFlow never up- or downgrades it; [statsd]: Airflow's own
# metrics go to the statsd-exporter service (docker-compose.yml).
RUN pip install --no-cache-dir "apache-airflow[statsd]==${AIRFLOW_VERSION}" /opt/sealflow

COPY --chown=airflow:0 dags /opt/airflow/dags
COPY --chown=airflow:0 plugins /opt/airflow/plugins
