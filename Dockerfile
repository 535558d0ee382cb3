FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY lifecycle lifecycle
COPY projections projections
COPY streams streams
COPY leadflow leadflow
RUN pip install --no-cache-dir .
ENTRYPOINT []
