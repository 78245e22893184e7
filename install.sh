#!/bin/sh
# Install qa into .venv, on a fresh machine, in one go:
#   1. on Debian or Ubuntu, FreeDict's German-English dictionary, which German glosses read
#      (optional: without it qa works and reads German text as it stands);
#   2. on Debian or Ubuntu, Tesseract OCR with English, German, Chinese and Korean data, which reads scanned PDFs
#      (optional: without it a PDF page with no text layer is skipped with a warning), and chromium for the
#      browser tests of the chat page;
#   3. the CPU build of torch 2.13.0 first: any other torch requirement pulls gigabytes of CUDA;
#   4. qa itself, editable, with its test tools.
set -eu
cd "$(dirname "$0")"

have_freedict() {
    for folder in "${QA_FREEDICT_DIR:-}" /usr/share/dictd /usr/local/share/dictd; do
        [ -n "$folder" ] && [ -f "$folder/freedict-deu-eng.index" ] && return 0
    done
    return 1
}

if [ "$(id -u)" -eq 0 ]; then as_root=""; elif command -v sudo >/dev/null 2>&1; then as_root="sudo"; else as_root="-"; fi

# apt_install WHAT PACKAGE...: install with apt-get, or say why not and go on (each is optional to qa itself).
apt_install() {
    what=$1; shift
    echo "install.sh: installing $* with apt-get" >&2
    if [ "$as_root" = "-" ]; then
        echo "install.sh: neither root nor sudo: skipping $*, so $what" >&2
    elif ! { $as_root apt-get install -y -q "$@" >/dev/null 2>&1 ||
             { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q "$@" >/dev/null; }; }; then
        echo "install.sh: could not install $*, so $what" >&2
    fi
}

if command -v apt-get >/dev/null 2>&1; then
    have_freedict || apt_install "German text is not glossed" dict-freedict-deu-eng
    command -v tesseract >/dev/null 2>&1 ||
        apt_install "scanned PDF pages are not read" tesseract-ocr tesseract-ocr-deu tesseract-ocr-chi-sim tesseract-ocr-kor
    # The browser tests drive Debian's chromium (never a downloaded browser); the fonts make their
    # screenshots of Chinese, Korean and emoji legible.
    [ -x /usr/bin/chromium ] || apt_install "the browser tests are skipped" chromium fonts-wqy-zenhei fonts-noto-color-emoji
fi

python3 -m venv .venv
.venv/bin/pip install --quiet torch==2.13.0 -e '.[dev]'
