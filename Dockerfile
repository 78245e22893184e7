# qa in a container: the HTTP API by default, or the Slack bot (see README, "Deploy").
#   docker build -t qa .
#   docker run -v "$PWD/data:/data" -p 8000:8000 qa                       # qa serve
#   docker run -v "$PWD/data:/data" --env-file slack.env qa slack         # qa slack (Socket Mode)
# /data holds corpus/, index/ and an optional qa.toml; the question log and caches go there too.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends dict-freedict-deu-eng \
 && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# The CPU build of torch first: from PyPI it would pull gigabytes of CUDA.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/qa
COPY pyproject.toml README.md ./
COPY qa ./qa
COPY prompts ./prompts
# Editable, like install.sh: the prompts are read from /opt/qa/prompts.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -e '.[milvus]' \
 && useradd --system --create-home --home-dir /home/qa qa \
 && mkdir /data && chown qa:qa /data

USER qa
WORKDIR /data
# qa.toml is found in /data; the question log, feedback log and caches persist in the volume.
ENV XDG_STATE_HOME=/data/state XDG_CACHE_HOME=/data/cache
VOLUME /data
EXPOSE 8000 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
ENTRYPOINT ["qa"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
