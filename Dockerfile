# policyengine as a service: the shipped packs behind `policyengine serve` on port 8181.
#   docker build -t policyengine .
#   docker run --rm -p 8181:8181 policyengine
# Decision log: mount a volume and add `--log /data/decisions.jsonl` to the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src/ src/
RUN pip install ".[server,excel]"
COPY policies/ policies/

RUN useradd --create-home --uid 10001 policyengine
USER policyengine

EXPOSE 8181
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8181/healthz', timeout=4)"]

CMD ["policyengine", "serve", "policies/huixiao", "policies/customer_management", "policies/online_store", "policies/service_system", "--host", "0.0.0.0", "--port", "8181"]
