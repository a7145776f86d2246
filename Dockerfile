# The Outreach image: the CLI, the Celery workers and beat.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-microhei fonts-lxgw-wenkai fontconfig poppler-utils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY outreach outreach
COPY audiences audiences
COPY workers workers
COPY templates templates
RUN pip install --no-cache-dir '.[s3]'
RUN useradd --create-home outreach && mkdir -p /data/batches && chown -R outreach /data
USER outreach
ENV OUTREACH_DATA_DIR=/data OUTREACH_BATCH_DIR=/data/batches
ENTRYPOINT ["outreach"]
