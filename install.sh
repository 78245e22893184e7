#!/bin/sh
# Install qa into .venv, on a fresh machine, in one go:
#   1. on Debian or Ubuntu, FreeDict's German-English dictionary, which German glosses read
#      (optional: without it qa works and reads German text as it stands);
#   2. on Debian or Ubuntu, Tesseract OCR with English, German, Chinese and Korean data, which reads scanned PDFs
#      (optional: without it a PDF page with no text layer is skipped with a warning);
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

if command -v apt-get >/dev/null 2>&1 && ! have_freedict; then
    echo "install.sh: installing dict-freedict-deu-eng (FreeDict's German-English dictionary) with apt-get" >&2
    if [ "$as_root" = "-" ]; then
        echo "install.sh: neither root nor sudo: skipping dict-freedict-deu-eng, so German text is not glossed" >&2
    elif ! { $as_root apt-get install -y -q dict-freedict-deu-eng >/dev/null 2>&1 ||
             { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q dict-freedict-deu-eng >/dev/null; }; }; then
        echo "install.sh: could not install dict-freedict-deu-eng, so German text is not glossed" >&2
    fi
fi

if command -v apt-get >/dev/null 2>&1 && ! command -v tesseract >/dev/null 2>&1; then
    ocr="tesseract-ocr tesseract-ocr-deu tesseract-ocr-chi-sim tesseract-ocr-kor"
    echo "install.sh: installing Tesseract OCR ($ocr) with apt-get" >&2
    if [ "$as_root" = "-" ]; then
        echo "install.sh: neither root nor sudo: skipping Tesseract, so scanned PDF pages are not read" >&2
    elif ! { $as_root apt-get install -y -q $ocr >/dev/null 2>&1 ||
             { $as_root apt-get update -q >/dev/null && $as_root apt-get install -y -q $ocr >/dev/null; }; }; then
        echo "install.sh: could not install Tesseract, so scanned PDF pages are not read" >&2
    fi
fi

python3 -m venv .venv
.venv/bin/pip install --quiet torch==2.13.0 -e '.[dev]'
