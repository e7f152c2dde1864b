# MLflow tracking + registry server for docker-compose.yml: the official image plus the PostgreSQL driver and
# the S3 client, baked in so a container restart never depends on reaching PyPI.
ARG MLFLOW_VERSION=3.17.2
FROM ghcr.io/mlflow/mlflow:v${MLFLOW_VERSION}
RUN pip install --no-cache-dir 'psycopg2-binary==2.9.11' 'boto3>=1.34,<2'
