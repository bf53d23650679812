#!/bin/sh
# Regenerate the example PKI from scratch with minica itself. Run from anywhere:
#   sh example-ca/regenerate.sh
# It makes the root CA (name-constrained to example.test and localhost), the issuing
# intermediate below it, and issues one server and one client certificate into the
# intermediate's registry. Their keys are thrown away: the certificates are there to be
# listed and shown. They last about three years, so that anything relying on them stays
# valid between regenerations.
set -eu
cd "$(dirname "$0")"
rm -rf root issuing
python -m minica init --ca root --cn "minica example root CA (do not trust)" \
    --org "minica example" --days 7300 \
    --permit-dns example.test --permit-dns localhost --permit-email example.test \
    --permit-ip 127.0.0.0/8 --permit-ip ::1/128
python -m minica init --ca issuing --parent root --cn "minica example issuing CA (do not trust)" \
    --org "minica example" --days 3650 \
    --crl-url http://pki.example.test/issuing.crl --issuer-url http://pki.example.test/issuing.crt
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python -m minica issue --ca issuing --profile server --cn www.example.test --dns example.test \
    --days 1100 --out "$scratch/www.crt"
python -m minica issue --ca issuing --profile client --cn "Alice Example" \
    --email alice@example.test --days 1100 --out "$scratch/alice.crt"
