#!/usr/bin/env bash
# Every relative link and image in README.md and docs/*.md names a file or folder inside the
# repository (anchors are ignored; web addresses are left alone), and no document points outside it.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
status=0
for doc in "$root/README.md" "$root"/docs/*.md; do
  dir=$(dirname "$doc")
  # ](target) of Markdown links and images, one per line
  while IFS= read -r target; do
    target=${target%%#*}
    [ -z "$target" ] && continue
    case "$target" in http://* | https://* | mailto:*) continue ;; esac
    resolved=$(realpath -m "$dir/$target")
    case "$resolved" in
      "$root"/*) [ -e "$resolved" ] || { echo "FAIL: ${doc#$root/}: link to $target: no such file"; status=1; } ;;
      *) echo "FAIL: ${doc#$root/}: link to $target points outside the repository"; status=1 ;;
    esac
  done < <(grep -o '](\([^)]*\))' "$doc" | sed 's/^](//; s/)$//; s/ .*//')
  if grep -n '\.\./shared\|DESIGN\.md' "$doc"; then
    echo "FAIL: ${doc#$root/} refers to files outside the repository"
    status=1
  fi
done
[ $status -eq 0 ] && echo "PASS: every link in README.md and docs/ resolves inside the repository"
exit $status
