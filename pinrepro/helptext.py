"""The end of each command's ``--help``: two examples and the exit codes (README's "Commands" says the same).

``\\b`` keeps click from re-wrapping the lines of the paragraph that follows it.
"""

from __future__ import annotations

_ERROR = "2  an error: bad input or configuration, a registry or index that failed; no file written"


def _epilog(examples: list[tuple[str, str]], *codes: str) -> str:
    lines = "\n".join(f"  {command}\n      {what}" for command, what in examples)
    return f"\b\nExamples:\n{lines}\n\n\b\nExit codes:\n" + "\n".join(f"  {code}" for code in codes)


EPILOGS = {
    "lock": _epilog([("pinrepro lock", "pin what is new or changed, keep every other pin"),
                     ("pinrepro lock --upgrade --check", "exit 1 and show the diff if any pin would move")],
                    "0  ok", "1  --check: something would change", _ERROR),
    "verify": _epilog([("pinrepro verify", "offline: is everything pinned and in agreement?"),
                       ("pinrepro -C services/api verify --format github --strict", "annotations for CI")],
                      "0  ok", "1  errors found (with --strict, warnings too)", _ERROR),
    "refresh": _epilog([("pinrepro refresh --dry-run", "what would move, as the pull request's markdown"),
                        ("pinrepro refresh --open-pr", "commit, push, and open or update the bot's pull request")],
                       "0  ok", _ERROR),
    "manifest": _epilog([("pinrepro manifest --packages", "what is inside each image, apt packages too"),
                         ("pinrepro manifest --diff origin/main --exit-code", "exit 1 if the images changed")],
                        "0  ok", "1  --exit-code: something changed", _ERROR),
    "doctor": _epilog([("pinrepro doctor", "can this host run every locked image?"),
                       ("pinrepro doctor --format json", "the same, for scripts")],
                      "0  ok", "1  an image cannot run on this host", _ERROR),
    "policy": _epilog([("pinrepro policy", "write pinrepro.policy.json from the lock"),
                       ("pinrepro policy --deny-unlocked -o -", "print it, denying every image the lock does not pin")],
                      "0  ok", _ERROR),
    "check": _epilog([("pinrepro check --strict", "the ML production checklist; warnings fail too"),
                      ("pinrepro check --format sarif docker/serve.Dockerfile", "SARIF for GitHub code scanning")],
                     "0  ok", "1  errors found (with --strict, warnings too)",
                     "2  bad input: a Dockerfile, .dockerignore or configuration Docker or pinrepro refuses"),
    "completion": _epilog([('eval "$(pinrepro completion bash)"', "in ~/.bashrc (zsh: ~/.zshrc)"),
                           ("pinrepro completion fish > ~/.config/fish/completions/pinrepro.fish", "fish")],
                          "0  ok", "2  an unknown shell"),
}
