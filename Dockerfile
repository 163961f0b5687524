# actionrec serve: one model behind the HTTP API and the web page (CPU).
#
#   docker build -t actionrec .
#   docker run --rm -p 8000:8000 -e ACTIONREC_TOKEN=change-me -v $PWD/models:/models:ro actionrec /models/best.safetensors
#   docker run --rm -p 8000:8000 -e ACTIONREC_TOKEN=change-me -v actionrec-cache:/home/actionrec/.cache actionrec i3d_kinetics400
#
# The container binds 0.0.0.0, so a token is required (ACTIONREC_TOKEN); /healthz and /readyz stay open
# for the orchestrator. See docs/serving.md for replicas behind a load balancer.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 actionrec

WORKDIR /opt/actionrec
COPY pyproject.toml constraints.txt README.md ./
COPY actionrec ./actionrec
# CPU-only torch from PyTorch's index (PyPI's Linux wheels pull in the CUDA libraries)
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt . \
    && python -c "import actionrec.serve"

USER actionrec
ENV ACTIONREC_HOME=/home/actionrec/.cache/actionrec
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"
ENTRYPOINT ["actionrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
CMD ["/models/model.safetensors"]
