#!/usr/bin/env bash
# Checks that the documents the code and docs cite are in the repository (issue 17, item 7).
#
#   bash scripts/check-doc-citations.sh [ROOT]     check the tree at ROOT (default: this repository)
#   bash scripts/check-doc-citations.sh --self-test
#                                                  plant bad citations in a temporary tree and check
#                                                  that every one is reported (and a good tree passes)
#
# Fails (exit 1, one "file:line: problem" per finding) when
#   1. a file under include/ examples/ tests/ benchmarks/ cmake/ docs/ or README.md mentions the
#      design notes that live beside the project only (ALGORITHMS.md, EVALUATION.md, TOOLCHAIN.md,
#      anything under shared/docs) — cite docs/algorithms.md, docs/evaluation.md etc. instead;
#   2. a citation `docs/<name>.md` in include/ examples/ tests/ benchmarks/ cmake/ or README.md names
#      a file that does not exist, or `docs/<name>.md#<anchor>` an anchor with no matching heading;
#   3. a Markdown link `[..](<name>.md#<anchor>)` or `[..](#<anchor>)` in docs/*.md or README.md
#      points to a missing file or anchor.
# Anchors are GitHub's: the heading text lowercased, every character other than an ASCII letter,
# digit, space, '-' or '_' dropped (GitHub would keep non-ASCII letters: keep headings ASCII), spaces
# turned into '-', and "-1", "-2", ... appended to repeated headings. Headings inside ``` or ~~~ fences do not count. Plain awk (mawk too). Exit 2 on bad usage.
set -u
export LC_ALL=C

self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

# Anchors of the headings of a Markdown file, one per line.
anchors_of() {
  awk '
    /^[ ]*(```|~~~)/ { fence = !fence; next }
    fence { next }
    /^#+[ \t]/ {
      match($0, /^#+/); if (RLENGTH > 6) next
      h = $0
      sub(/^#+[ \t]+/, "", h); sub(/[ \t]+#+[ \t]*$/, "", h); sub(/[ \t]+$/, "", h)
      h = tolower(h)
      gsub(/[^a-z0-9 _-]/, "", h)
      gsub(/ /, "-", h)
      if (h in seen) { n = seen[h]; seen[h] = n + 1; print h "-" n } else { seen[h] = 1; print h }
    }' "$1"
}

declare -A anchor_cache=()
has_anchor() {  # file anchor
  local f=$1 a=$2
  if [[ -z ${anchor_cache[$f]+x} ]]; then anchor_cache[$f]=$'\n'"$(anchors_of "$f")"$'\n'; fi
  [[ ${anchor_cache[$f]} == *$'\n'"$a"$'\n'* ]]
}

check_tree() {
  local root=$1
  cd "$root" || { echo "check-doc-citations: cannot enter $root" >&2; return 2; }
  local -a scan=() code=() mdfiles=()
  local d
  for d in include examples tests benchmarks cmake docs; do [[ -d $d ]] && scan+=("$d"); done
  for d in include examples tests benchmarks cmake; do [[ -d $d ]] && code+=("$d"); done
  [[ -f README.md ]] && scan+=(README.md) && code+=(README.md)
  if [[ -d docs ]]; then while IFS= read -r d; do mdfiles+=("$d"); done < <(find docs -name '*.md' | sort); fi
  [[ -f README.md ]] && mdfiles+=(README.md)
  local problems=0 cites=0 links=0 file line rest target anchor

  # 1. Design notes that are not in the repository.
  if ((${#scan[@]})); then
    while IFS= read -r hit; do
      file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}
      echo "$file:$line: cites a document that is not in the repository (use docs/algorithms.md, docs/evaluation.md, ...): ${rest#*:}"
      problems=$((problems + 1))
    done < <(grep -rnI -E 'ALGORITHMS\.md|EVALUATION\.md|TOOLCHAIN\.md|shared/docs' "${scan[@]}" 2>/dev/null)
  fi

  # 2. docs/<name>.md[#anchor] citations in code and README.md.
  if ((${#code[@]})); then
    while IFS= read -r hit; do
      file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}; target=${rest#*:}
      target=docs/${target#*docs/}  # drop the character matched before docs/
      cites=$((cites + 1))
      anchor=
      if [[ $target == *'#'* ]]; then anchor=${target#*#}; target=${target%%#*}; fi
      if [[ ! -f $target ]]; then
        echo "$file:$line: cites $target, which does not exist"
        problems=$((problems + 1))
      elif [[ -n $anchor ]] && ! has_anchor "$target" "$anchor"; then
        echo "$file:$line: cites $target#$anchor, but $target has no heading with that anchor"
        problems=$((problems + 1))
      fi
    done < <(grep -rnoI -E '(^|[^/A-Za-z0-9_.-])docs/[A-Za-z0-9_.-]+\.md(#[A-Za-z0-9_-]+)?' "${code[@]}" 2>/dev/null)
  fi

  # 3. Relative Markdown links with an anchor in docs/*.md and README.md.
  local md dir
  for md in "${mdfiles[@]}"; do
    dir=$(dirname "$md")
    while IFS= read -r hit; do
      line=${hit%%:*}; rest=${hit#*:}
      rest=${rest#](}; rest=${rest%)}
      links=$((links + 1))
      target=${rest%%#*}; anchor=${rest#*#}
      if [[ -z $target ]]; then target=$md; else target=$dir/$target; fi
      if [[ ! -f $target ]]; then
        echo "$md:$line: links to ${rest%%#*}, which does not exist"
        problems=$((problems + 1))
      elif ! has_anchor "$target" "$anchor"; then
        echo "$md:$line: links to ${rest}, but ${target#./} has no heading with that anchor"
        problems=$((problems + 1))
      fi
    done < <(grep -noE '\]\(([A-Za-z0-9_./-]*\.md)?#[A-Za-z0-9_-]+\)' "$md")
  done

  if ((problems)); then
    echo "check-doc-citations: $problems problem(s) in $root"
    return 1
  fi
  echo "check-doc-citations: OK ($root: no citation of documents outside the repository;" \
       "$cites docs/*.md citations in code and README.md, $links anchored Markdown links, all resolve)"
  return 0
}

self_test() {
  local tmp out rc fails=0
  tmp=$(mktemp -d) || return 2
  trap 'rm -rf "$tmp"' RETURN
  mkdir -p "$tmp/include/x" "$tmp/docs" "$tmp/tests"
  cat > "$tmp/docs/good.md" <<'EOF'
# Good

## Notes
## Notes
## SPRQ packed model files (`io/packed_model.hpp`)
## Stream format (io/rans.hpp)

```sh
# not a heading
```

Links: [here](#notes-1), [there](good.md#stream-format-ioranshpp).
EOF
  cat > "$tmp/include/x/ok.hpp" <<'EOF'
// docs/good.md#notes, docs/good.md#notes-1, docs/good.md#sprq-packed-model-files-iopacked_modelhpp
// docs/good.md#stream-format-ioranshpp. See docs/good.md.
EOF
  out=$(bash "$self" "$tmp" 2>&1); rc=$?
  if ((rc != 0)); then echo "self-test: the good tree failed (exit $rc):"; echo "$out"; fails=$((fails + 1)); fi

  # Plant one bad citation of each kind.
  printf '// Math: ../shared/docs/%s §4.3\n' "ALGORITHMS.md" > "$tmp/include/x/bad_notes.hpp"
  printf '// Protocol: docs/%s\n' "EVALUATION.md" > "$tmp/tests/bad_protocol.cpp"
  printf '// See docs/good.md#no-such-heading.\n' > "$tmp/include/x/bad_anchor.hpp"
  printf '// See docs/missing.md#notes.\n' > "$tmp/include/x/bad_file.hpp"
  printf '# Bad\n\nSee [x](good.md#not-there) and [y](#nor-here).\n' > "$tmp/docs/bad_links.md"
  out=$(bash "$self" "$tmp" 2>&1); rc=$?
  echo "$out"
  if ((rc != 1)); then echo "self-test: expected exit 1 on the planted citations, got $rc"; fails=$((fails + 1)); fi
  local want
  for want in 'include/x/bad_notes.hpp:1:' 'tests/bad_protocol.cpp:1:' 'include/x/bad_anchor.hpp:1:' \
              'include/x/bad_file.hpp:1:' 'docs/bad_links.md:3: links to good.md#not-there' \
              'docs/bad_links.md:3: links to #nor-here'; do
    if [[ $out != *"$want"* ]]; then echo "self-test: not reported: $want"; fails=$((fails + 1)); fi
  done
  if [[ $out == *ok.hpp* || $out == *'docs/good.md:'* ]]; then
    echo "self-test: a good citation was reported"; fails=$((fails + 1))
  fi
  if ((fails)); then echo "check-doc-citations self-test: FAILED ($fails)"; return 1; fi
  echo "check-doc-citations self-test: OK (every planted bad citation reported, good ones accepted)"
  return 0
}

case "${1:-}" in
  --self-test) self_test; exit $? ;;
  -h|--help) sed -n '2,20p' "$self"; exit 0 ;;
  -*) echo "usage: $0 [ROOT] | --self-test" >&2; exit 2 ;;
esac
root=${1:-$(dirname "$self")/..}
[[ -d $root ]] || { echo "check-doc-citations: $root is not a directory" >&2; exit 2; }
root=$(cd "$root" && pwd)
check_tree "$root"
exit $?
