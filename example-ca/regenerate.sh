#!/bin/sh
# Regenerate the example CA from scratch with minica itself. Run from anywhere:
#   sh example-ca/regenerate.sh
# It makes the root CA, then issues one server and one client certificate into the
# registry (their keys are thrown away: the certificates are there to be listed and shown;
# they last five years, so that tests relying on them stay green between regenerations).
set -eu
cd "$(dirname "$0")"
rm -rf ca.crt ca-chain.crt ca.yaml private profiles certs minica.db
python -m minica init --ca . --cn "minica example root CA (do not trust)" \
    --org "minica example" --days 7300 \
    --crl-url http://ca.example.test/crl.pem --issuer-url http://ca.example.test/ca.crt
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python -m minica issue --ca . --profile server --cn www.example.test --dns example.test --days 1825 \
    --out "$scratch/www.crt"
python -m minica issue --ca . --profile client --cn "Alice Example" --days 1825 \
    --email alice@example.test --out "$scratch/alice.crt"
