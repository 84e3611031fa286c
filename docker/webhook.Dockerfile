# The example webhook (examples/webhook.py: only joe/secret may connect) on
# Python 3. Base as in mosquitto.Dockerfile.
ARG BASE=hookd-base:bookworm
FROM ${BASE}
RUN command -v python3 >/dev/null || { apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
      && rm -rf /var/lib/apt/lists/*; }
COPY dist/webhook.py /opt/hookd/webhook.py
USER 65534:65534
EXPOSE 8080
CMD ["python3", "-u", "/opt/hookd/webhook.py", "--host", "0.0.0.0", "--port", "8080"]
