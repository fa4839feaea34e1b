# pulso's image for every service of deploy/docker-compose.yml (api, scheduler, worker,
# stream, dashboard): `docker build -t pulso .`, then `docker run pulso <command>`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY pulso ./pulso
RUN pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin pulso \
    && mkdir -p /var/lib/pulso \
    && chown pulso:pulso /var/lib/pulso

USER pulso
ENV PULSO_DATA_DIR=/var/lib/pulso
VOLUME ["/var/lib/pulso"]
EXPOSE 8000 8501

ENTRYPOINT ["pulso"]
CMD ["up", "--host=0.0.0.0", "--port=8000"]
