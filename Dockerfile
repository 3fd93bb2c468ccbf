# One image for every pulse-ledger role; the role is the command (`serve ingestor`, `migrate`, ...).

# --- build: install the project and its dependencies into a self-contained venv ---
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
# One COPY per package: a multi-source COPY would merge the directories' contents.
COPY kernel/ kernel/
COPY storage/ storage/
COPY access/ access/
COPY eventstore_cql/ eventstore_cql/
COPY ingestor/ ingestor/
COPY ledger/ ledger/
COPY projections/ projections/
COPY catalog/ catalog/
COPY query/ query/
COPY pulse/ pulse/
COPY proto/ proto/
RUN pip install --no-cache-dir .

# --- runtime: the venv, the CQL files and a non-root user, no sources or build tools ---
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

# /app is writable by the user so the embedded default (`.pulse-data/`) also works in the image;
# the installed code and the CQL files stay root-owned and read-only.
RUN useradd --system --create-home --uid 10001 --user-group pulse \
    && install -d -o pulse -g pulse /app

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The keyspace and table files `pulse migrate` applies (not a Python package).
COPY cql/ cql/

USER pulse

# gRPC ingestion and the read API.
EXPOSE 50051 8000

ENTRYPOINT ["pulse"]
CMD ["serve", "all"]
