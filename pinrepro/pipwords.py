"""Words of pip's and uv's command lines that both readers of install commands need (verify's install check in
``pinrepro.installs`` and check's package rules in ``pinrepro.check.packages``): one list, so they never disagree on
which option eats the next word."""

from __future__ import annotations

# pip / uv options that take a value (so the value is not mistaken for a package).
VALUE_OPTIONS = frozenset({
    "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c", "--constraint", "-r", "--requirement",
    "-e", "--editable", "-t", "--target", "--prefix", "--root", "--platform", "--python-version",
    "--implementation", "--abi", "--only-binary", "--no-binary", "--progress-bar", "--cache-dir", "--src",
    "--upgrade-strategy", "--trusted-host", "--proxy", "--retries", "--timeout", "--exists-action", "--cert",
    "--client-cert", "--log", "--global-option", "--config-settings", "-C", "--report", "--python", "-p",
    "--index-strategy", "--root-user-action", "--index", "--default-index", "--keyring-provider",
    "--resolution", "--prerelease", "--link-mode", "--exclude-newer", "--python-platform", "--build-constraint",
    "--override", "--group", "--extra", "--directory", "--project", "--package", "-n", "--name",
    "--channel", "--env-file",
})
