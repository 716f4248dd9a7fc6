#!/usr/bin/env bash
# Set up everything dcmforge's demo and tests need on a fresh machine, idempotently:
# the DICOM validators and readers the tests use as independent oracles (Debian packages),
# and a virtual environment in .venv with dcmforge installed in editable mode plus its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_packages=()
command -v dciodvfy >/dev/null || need_packages+=(dicom3tools)
command -v dcmdump >/dev/null || need_packages+=(dcmtk)
command -v dcm2niix >/dev/null || need_packages+=(dcm2niix)
command -v gdcminfo >/dev/null || need_packages+=(libgdcm-tools)
# a real archive for the send tests and benchmark: Orthanc and its DICOMweb plugin; openssl makes a test
# certificate, curl is the benchmark's floor
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || need_packages+=(orthanc)
dpkg -s orthanc-dicomweb >/dev/null 2>&1 || need_packages+=(orthanc-dicomweb)
command -v openssl >/dev/null || need_packages+=(openssl)
command -v curl >/dev/null || need_packages+=(curl)
if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
  else
    echo "bootstrap: missing ${need_packages[*]}; install them (sudo apt-get install ${need_packages[*]}) or tests that need them are skipped" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
