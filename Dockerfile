# bgpd as a standalone route reflector (docs/operations.md, "The container").
#
#   docker build -t bgpd .
#   docker run -d --name bgpd-rr --network fabric --ip 192.0.2.1 \
#     -v /etc/bgpd/bgpd.yaml:/etc/bgpd/bgpd.yaml:ro bgpd
#   docker exec bgpd-rr bgpd show neighbors
#
# The config is not in the image: mount it at /etc/bgpd/bgpd.yaml (readable by uid 179 or
# gid 179; examples/route-reflector.yaml is a start). Arguments after the image name are
# passed to `bgpd run`, e.g. `--log-level debug`.

# --- build: a wheel from the build context (pyproject.toml, README.md, bgpd/) ----------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bgpd ./bgpd
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BGPD_CONFIG=/etc/bgpd/bgpd.yaml \
    BGPD_SOCKET=/run/bgpd/bgpd.sock

# A fixed numeric uid/gid (179, as the port), so that Kubernetes' runAsNonRoot can check
# it and a mounted config can be given to it (chgrp 179 bgpd.yaml; chmod 0640).
RUN groupadd --system --gid 179 bgpd \
 && useradd --system --uid 179 --gid 179 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin bgpd

COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels

# /run/bgpd holds the control socket (control_socket: /run/bgpd/bgpd.sock). Owner bgpd,
# group root with write access: it stays writable when the container runs as root with
# every capability dropped (--user 0:0 --cap-drop ALL --cap-add NET_BIND_SERVICE, for
# host networking), where root cannot override file permissions.
RUN install -d -m 0755 /etc/bgpd \
 && install -d -m 0770 -o bgpd -g root /run/bgpd

USER 179:179

# BGP. Binding it as uid 179 works in the container's own network namespace (Docker sets
# net.ipv4.ip_unprivileged_port_start=0 there since 20.10; elsewhere pass
# --sysctl net.ipv4.ip_unprivileged_port_start=179). With --network host it does not:
# see docs/operations.md.
EXPOSE 179/tcp

# Healthy while the daemon answers on its control socket ($BGPD_SOCKET).
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
    CMD ["bgpd", "show", "summary", "--json", "--timeout", "5"]

# SIGTERM (docker stop): Cease/Administrative Shutdown to every neighbor, then exit.
STOPSIGNAL SIGTERM
ENTRYPOINT ["bgpd", "run", "-c", "/etc/bgpd/bgpd.yaml"]
CMD []
