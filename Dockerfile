# lwm2m-testbed: the private carrier cloud in one image (LwM2M server, HTTP API, web console).
# Build: docker build -t lwm2m-testbed .      Run: docker compose up (see docker-compose.yml)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package finds migrations/ and web/ next to its source folders, so the image keeps the
# source tree and installs it in editable mode (aiocoap, python-mbedtls, asyncpg ship wheels).
COPY pyproject.toml README.md alembic.ini ./
COPY lwm2m ./lwm2m
COPY server ./server
COPY emulator ./emulator
COPY transport ./transport
COPY testbed ./testbed
COPY migrations ./migrations
COPY web ./web
RUN pip install -e . \
    && useradd --create-home --uid 10001 testbed \
    && mkdir -p /app/data \
    && chown testbed /app/data

USER testbed

# Defaults for a lone container; docker-compose.yml points the database at PostgreSQL.
# The carrier listeners share the container's address, each carrier on its own ports (5685-5694).
ENV TESTBED_DATABASE_URL=sqlite+aiosqlite:////app/data/testbed.db \
    TESTBED_HTTP_HOST=0.0.0.0 \
    TESTBED_HTTP_PORT=8080 \
    TESTBED_CARRIER_HOST=0.0.0.0

# CoAP (UDP 5683), CoAP over DTLS (UDP 5684), the carriers' CoAP/DTLS pairs (UDP 5685-5694),
# HTTP API and web console (TCP 8080).
EXPOSE 5683/udp 5684/udp 5685-5694/udp 8080

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/', timeout=4)"]

CMD ["sh", "-c", "exec testbed up --host 0.0.0.0 --db \"$TESTBED_DATABASE_URL\""]
