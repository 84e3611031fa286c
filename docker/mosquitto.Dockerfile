# A Mosquitto 2.0 broker node with the hookd plugin. The base is made here by
# docker/base (debootstrap, with mosquitto already in it); with a registry,
# `--build-arg BASE=debian:bookworm-slim` installs it with apt instead.
# The plugin must come from the same Debian release (glibc) as the base.
ARG BASE=hookd-base:bookworm
FROM ${BASE}
RUN command -v mosquitto >/dev/null || { apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto mosquitto-clients \
      && rm -rf /var/lib/apt/lists/*; }
COPY dist/libhookd_mosquitto.so /usr/lib/hookd/libhookd_mosquitto.so
# Each node's configuration (mosquitto-N.conf) is mounted here by compose.
COPY mosquitto-1.conf /etc/mosquitto/hookd.conf
EXPOSE 1883
# Mosquitto drops to its `mosquitto` user after binding.
CMD ["mosquitto", "-c", "/etc/mosquitto/hookd.conf"]
