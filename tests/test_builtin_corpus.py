"""The built-in corpus is prose a learner can read: Python's reference text without its tables, rules,
code, >>> sessions, grammar and reference lists."""
import re
from collections import Counter

import lmcore
from lmcore.data import corpus

SPHINX_TEXT = '''The "with" statement
********************

The "with" statement is used to wrap the execution of a block with
methods defined by a context manager.  This allows common usage
patterns to be encapsulated for convenient *reuse*. [1]

   with_stmt ::= "with" ( "(" with_stmt_contents ","? ")" | with_stmt_contents ) ":" suite
   with_item ::= expression ["as" target]

The following code:

   with EXPRESSION as TARGET:
       SUITE

is semantically equivalent to

   manager = (EXPRESSION)
   value = type(manager).__enter__(manager)

+-----------+-------------------------------------+
| Operation | Result                              |
|===========|=====================================|
| "x in s"  | "True" if an item of *s* is equal   |
+-----------+-------------------------------------+

   >>> class C:
   ...     pass
   >>> C().x
   Traceback (most recent call last):
   AttributeError: 'C' object has no attribute 'x'

* The context expression is evaluated to obtain a context
  manager with read-
  only attributes.

object.__enter__(self)

   Enter the runtime context related to this object.  The return value
   is bound to the target.

Changed in version 3.10: Support for using grouping parentheses.

See also:

  **PEP 343** - The “with” statement
     The specification, background, and examples for the Python "with"
     statement.

=========  =========
Another sentence that says something long enough to be a paragraph.

-[ Footnotes ]-

[1] The exception is propagated to the invocation stack unless there
    is a "finally" clause which happens to raise another exception.
'''


def test_reference_text_keeps_its_prose_and_drops_everything_else():
    assert corpus.reference_prose(SPHINX_TEXT) == [
        'The "with" statement is used to wrap the execution of a block with methods defined by a context '
        'manager. This allows common usage patterns to be encapsulated for convenient reuse.',
        "The context expression is evaluated to obtain a context manager with read-only attributes.",
        "Enter the runtime context related to this object. The return value is bound to the target.",
    ]


def test_the_builtin_corpus_is_prose_without_tables_code_or_grammar():
    text = lmcore.load_corpus("pythondocs").text
    assert len(text) > 100_000
    lines = text.split("\n")
    assert not [line for line in lines if line[:1].isspace()]           # no indented code
    assert not [line for line in lines if re.search(r"([-=+*~^_])\1{3}", line)]  # no rules, no underlines
    assert ">>>" not in text and "::=" not in text and not re.search(r"(?m)^\s*[|+]", text)
    trigrams = Counter(text[i:i + 3] for i in range(len(text) - 2)).most_common(100)
    top = [t for t, _ in trigrams]
    assert set(top[:3]) == {" th", "the", "he "}
    assert all(re.fullmatch(r"[a-z ]{3}", t) for t in top[:10]), top[:10]
    assert "   " not in top and "---" not in top


def test_the_builtin_corpus_is_the_same_text_each_time():
    assert lmcore.load_corpus("pythondocs").sha1 == lmcore.load_corpus("pythondocs").sha1
