# Shell helpers for the reliability suites; source this file from bash.

# The Python suites run on Debian's interpreter, which has python3-psycopg2
# (a python3 earlier on PATH may be another installation without it).
readonly RELIABILITY_PYTHON=/usr/bin/python3

# Keep the suites from writing __pycache__ directories into the checkout.
export PYTHONDONTWRITEBYTECODE=1

# Install python3-psycopg2 with apt-get unless it is already importable.
# Installing needs root; without root a missing package is an error.
require_psycopg2() {
	if "$RELIABILITY_PYTHON" -c 'import psycopg2' 2>/dev/null; then
		return 0
	fi
	if [[ $(id -u) -ne 0 ]]; then
		echo "python3-psycopg2 is missing; install it as root: apt-get install python3-psycopg2" >&2
		return 1
	fi
	echo "Installing python3-psycopg2"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends python3-psycopg2 >/dev/null ||
		{ apt-get update >/dev/null && apt-get install -y --no-install-recommends python3-psycopg2 >/dev/null; }
}
