#!/usr/bin/env python3
"""Holds the code to its size rules: no source file over 800 lines, no function over 120.

Usage: tools/check/sizes.py [--max-file N] [--max-function N] [DIR...]
Exit status 1 and one line per breach when a rule is broken, 0 otherwise. Tests and generated
code are not checked (only the folders given, agent/ placement/ chains/ probes/ by default).

Functions are found by their braces: a '{' that closes a line ending a signature (a ')' or a
trailing qualifier such as const/override/noexcept, or an initialiser list) at namespace or
class depth opens a function body; its length is counted from the signature's first line to
the closing '}'. Lambdas inside a function count toward that function.
"""
import argparse
import os
import re
import sys

SOURCE_EXT = ('.cpp', '.h', '.cc', '.hpp')


def strip_code(text):
    """Blanks comments, string and char literals (keeping newlines) so braces can be counted."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(''.join('\n' if ch == '\n' else ' ' for ch in text[i:j]))
            i = j
        elif c == 'R' and text.startswith('R"', i):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ')' + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(''.join('\n' if ch == '\n' else ' ' for ch in text[i:j]))
            i = j
        elif c in '"\'':
            # A digit separator (1'000) is not a char literal.
            if c == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < n and text[i + 1].isalnum():
                out.append(' ')
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(' ' * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


SIGNATURE_END = re.compile(r'(\)|\bconst|\boverride|\bnoexcept|\bfinal|->\s*[\w:<>,\s*&]+)\s*$')
NOT_FUNCTION = re.compile(r'^\s*(if|for|while|switch|catch|return|else|do|namespace|class|struct|enum|union)\b')


def functions(code):
    """Yields (name, first_line, last_line) for each function body at namespace/class level."""
    depth = 0
    scopes = []  # for each open brace: 'ns' (namespace/class/extern/init) or 'fn'
    lines = code.split('\n')
    pos_line = []
    for ln, line in enumerate(lines, 1):
        pos_line.extend([ln] * (len(line) + 1))
    start_fn = None
    i = 0
    for i, c in enumerate(code):
        if c == '{':
            in_fn = any(s[0] == 'fn' for s in scopes)
            if in_fn:
                scopes.append(('block', 0, ''))
                continue
            # Text since the previous ';', '{' or '}' is the head of this brace.
            k = i - 1
            while k >= 0 and code[k] not in ';{}':
                k -= 1
            head = code[k + 1:i]
            head_stripped = ' '.join(head.split())
            is_fn = bool(head_stripped) and '(' in head_stripped and not NOT_FUNCTION.match(head_stripped) \
                and not head_stripped.endswith('=') and SIGNATURE_END.search(head_stripped) is not None
            # Constructor initialiser lists: ") : a_(x), b_(y) {"
            if not is_fn and '(' in head_stripped and re.search(r'\)\s*:\s*[\w:]+\s*[({]', head_stripped):
                is_fn = not NOT_FUNCTION.match(head_stripped)
            if is_fn:
                first = k + 1
                while first < i and code[first].isspace():
                    first += 1
                name_m = re.search(r'([~\w:]+(?:operator\S*)?)\s*\(', head_stripped)
                scopes.append(('fn', pos_line[first], name_m.group(1) if name_m else head_stripped[:40]))
            else:
                scopes.append(('ns', 0, ''))
        elif c == '}':
            if not scopes:
                continue
            kind, first_line, name = scopes.pop()
            if kind == 'fn':
                yield name, first_line, pos_line[i]


def check(paths, max_file, max_function):
    problems = []
    for root in paths:
        for dirpath, _, files in os.walk(root):
            for f in sorted(files):
                if not f.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(dirpath, f)
                with open(path, encoding='utf-8', errors='replace') as fh:
                    text = fh.read()
                nlines = text.count('\n')
                if nlines > max_file:
                    problems.append(f'{path}: {nlines} lines (at most {max_file})')
                for name, first, last in functions(strip_code(text)):
                    length = last - first + 1
                    if length > max_function:
                        problems.append(f'{path}:{first}: function {name} is {length} lines (at most {max_function})')
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--max-file', type=int, default=800)
    ap.add_argument('--max-function', type=int, default=120)
    ap.add_argument('dirs', nargs='*', default=['agent', 'placement', 'chains', 'probes'])
    args = ap.parse_args()
    problems = check(args.dirs, args.max_file, args.max_function)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
