"""LongSelect writes the same options as WTForms' own select, faster (web/forms.py)."""

import re

from wtforms import Form, SelectChoice, SelectField
from wtforms.widgets import Select

from backoffice.web.forms import LongSelect

CHOICES = [
    SelectChoice("", "— choose a contractor —"),
    SelectChoice("a1", 'Tom & "Jerry" <Ltd>'),
    SelectChoice("b2", "Plain"),
    SelectChoice("c3", ""),
]


def options(html: str) -> list[tuple[str, bool, str]]:
    """(value, selected, label) of each option, whatever the order of its attributes."""
    return [
        (re.search(r'value="([^"]*)"', attrs).group(1), " selected" in f" {attrs}", label)
        for attrs, label in re.findall(r"<option ([^>]*)>(.*?)</option>", html)
    ]


class Plain(Form):
    who = SelectField("Who", choices=CHOICES, widget=Select())


class Long(Plain):
    who = SelectField("Who", choices=CHOICES, widget=LongSelect())


def test_a_long_select_writes_what_wtforms_writes():
    for data in ({}, {"who": "b2"}, {"who": "a1"}):
        assert options(str(Long(data=data).who())) == options(str(Plain(data=data).who()))
    assert options(str(Long(data={"who": "b2"}).who()))[2] == ("b2", True, "Plain")


def test_a_long_select_escapes_names_and_marks_the_chosen_one():
    html = str(Long(data={"who": "a1"}).who())
    assert '<option value="a1" selected>Tom &amp; &#34;Jerry&#34; &lt;Ltd&gt;</option>' in html
    assert '<option value="c3">c3</option>' in html  # no label: the value, as WTForms does
