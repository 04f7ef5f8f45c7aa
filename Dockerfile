# The controller's image: `rollwise up --backend kubernetes --leader-elect` in a pod, as the
# manifests of `rollwise render` run it (docs/kubernetes.md). The versions are the lock
# file's (requirements-runtime.lock: requirements.lock without the dev group).
#
#   docker build -t registry.example/rollwise:$(python -c 'import rollwise; print(rollwise.__version__)') .
#   rollwise render -f rollwise.yaml --version 1.0.0 --controller-image registry.example/rollwise:<v> -o manifests/

FROM python:3.11-slim AS build
ARG UV_VERSION=0.13.8
WORKDIR /src
RUN python -m venv /opt/rollwise \
 && /opt/rollwise/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
COPY requirements-runtime.lock ./
RUN /opt/rollwise/bin/uv pip sync --python /opt/rollwise/bin/python --require-hashes \
        --compile-bytecode requirements-runtime.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/rollwise/bin/uv pip install --python /opt/rollwise/bin/python --no-deps \
        --compile-bytecode . \
 && /opt/rollwise/bin/uv pip uninstall --python /opt/rollwise/bin/python uv

FROM python:3.11-slim
COPY --from=build /opt/rollwise /opt/rollwise
# uid 10001, as the rendered pod's securityContext (runAsNonRoot, fsGroup 10001) expects
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin rollwise \
 && mkdir -p /var/lib/rollwise && chown 10001:10001 /var/lib/rollwise
USER 10001
# ROLLWISE_STATE_DIR: `kubectl exec <pod> -- rollwise status` finds the controller
ENV PATH=/opt/rollwise/bin:$PATH PYTHONUNBUFFERED=1 ROLLWISE_STATE_DIR=/var/lib/rollwise
WORKDIR /var/lib/rollwise
EXPOSE 9470
CMD ["rollwise", "up", "--state-dir", "/var/lib/rollwise", "--log-format", "json", \
     "--metrics-host", "0.0.0.0", "--backend", "kubernetes", "--leader-elect"]
