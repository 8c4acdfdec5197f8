"""The send request model: every SendIM rule, reported all at once, field by field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.fields import describe_errors
from gateway.phone import mask, normalise
from gateway.sending.request import SendRequest


def valid(**overrides: Any) -> dict[str, Any]:
    body = {
        "im_type": "IM",
        "im_sender_name": "MyShop",
        "im_text": "Hello",
        "destinations": ["306912345678"],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def problems(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        SendRequest.model_validate(body)
    return {e.field: e.message for e in describe_errors(caught.value.errors())}


FALLBACK = {"im_type": "IM_SMSFB", "senderid": "MyShop", "sms_text": "Hello by SMS"}

# (what is wrong, the body, the field that must be named, words the message must hold)
RULES = [
    ("im_type not IM/IM_SMSFB", valid(im_type="SMS"), "im_type", "'IM' or 'IM_SMSFB'"),
    ("im_type missing", valid(im_type=...), "im_type", "required"),
    ("sender name missing", valid(im_sender_name=...), "im_sender_name", "required"),
    ("sender name blank", valid(im_sender_name="   "), "im_sender_name", "blank"),
    ("text empty", valid(im_text=""), "im_text", "at least 1"),
    ("text over 1000", valid(im_text="x" * 1001), "im_text", "at most 1000"),
    ("destinations empty", valid(destinations=[]), "destinations", "at least 1"),
    ("destinations missing", valid(destinations=...), "destinations", "required"),
    ("destination invalid", valid(destinations=["306912345678", "12345"]), "destinations[1]", "'12345'"),
    ("destination letters", valid(destinations=["30691234567a"]), "destinations[0]", "'30691234567a'"),
    ("destination not a string", valid(destinations=[306912345678]), "destinations[0]", "string"),
    (
        "two images",
        valid(im_image_urls=["https://a.example/1.png", "https://a.example/2.png"]),
        "im_image_urls",
        "at most 1",
    ),
    ("image not https", valid(im_image_urls=["http://a.example/1.png"]), "im_image_urls[0]", "https"),
    ("image relative", valid(im_image_urls=["/1.png"]), "im_image_urls[0]", "https"),
    (
        "two actions",
        valid(
            im_actions=[
                {"caption": "a", "url": "https://a.example"},
                {"caption": "b", "url": "https://b.example"},
            ]
        ),
        "im_actions",
        "at most 1",
    ),
    (
        "action without caption",
        valid(im_actions=[{"url": "https://a.example"}]),
        "im_actions[0].caption",
        "required",
    ),
    (
        "action blank caption",
        valid(im_actions=[{"caption": " ", "url": "https://a.example"}]),
        "im_actions[0].caption",
        "blank",
    ),
    ("action without url", valid(im_actions=[{"caption": "Go"}]), "im_actions[0].url", "required"),
    (
        "action url not https",
        valid(im_actions=[{"caption": "Go", "url": "ftp://a.example"}]),
        "im_actions[0].url",
        "https",
    ),
    ("fallback without senderid", valid(**{**FALLBACK, "senderid": ...}), "senderid", "IM_SMSFB"),
    ("fallback without sms_text", valid(**{**FALLBACK, "sms_text": ...}), "sms_text", "IM_SMSFB"),
    ("senderid too long", valid(**{**FALLBACK, "senderid": "ABCDEFGHIJKL"}), "senderid", "at most 11"),
    ("senderid bad characters", valid(**{**FALLBACK, "senderid": "Shop_1"}), "senderid", "may only use"),
    ("numeric senderid too short", valid(**{**FALLBACK, "senderid": "123"}), "senderid", "4 to 16 digits"),
    ("numeric senderid too long", valid(**{**FALLBACK, "senderid": "1" * 17}), "senderid", "4 to 16 digits"),
    ("pricecat 2", valid(pricecat=2), "pricecat", "0 or 1"),
    ("pricecat as text", valid(pricecat="1"), "pricecat", "0 or 1"),
    ("apitoken sent", valid(apitoken="abc"), "apitoken", "gateway supplies the provider token"),
    ("unknown field", valid(schedule="tomorrow"), "schedule", "not a known field"),
]


@pytest.mark.parametrize(("rule", "body", "field", "words"), RULES, ids=[r[0] for r in RULES])
def test_each_rule_is_refused_naming_the_field(
    rule: str, body: dict[str, Any], field: str, words: str
) -> None:
    # Given a body that breaks one rule
    # When it is validated
    found = problems(body)

    # Then exactly that field is named, with a sentence that says the rule
    assert list(found) == [field], found
    assert words in found[field]


def test_five_problems_are_reported_together() -> None:
    # Given a body with five different problems
    body = valid(im_type="SMS", im_text="", destinations=["123"], pricecat=7, apitoken="t")

    # When it is validated, then all five come back at once
    assert set(problems(body)) == {"im_type", "im_text", "destinations[0]", "pricecat", "apitoken"}


def test_errors_never_echo_the_input() -> None:
    # Given a caller who sent a token
    with pytest.raises(ValidationError) as caught:
        SendRequest.model_validate(valid(apitoken="0123456789abcdef-secret"))

    # Then neither the exception text nor the described errors hold it
    assert "0123456789abcdef-secret" not in str(caught.value)
    assert "0123456789abcdef-secret" not in repr(describe_errors(caught.value.errors()))


def test_a_valid_fallback_request_passes_and_deduplicates() -> None:
    # Given one number typed three ways plus another
    body = valid(
        **FALLBACK,
        destinations=["+30 691 234 5678", "00306912345678", "306912345678", "306912345679"],
        im_image_urls=["https://example.com/a.png"],
        im_actions=[{"caption": "Go", "url": "https://example.com"}],
        pricecat=1,
    )

    # When validated
    request = SendRequest.model_validate(body)

    # Then duplicates are dropped and counted, order kept
    assert request.destinations == ["306912345678", "306912345679"]
    assert request.duplicates_removed == 2
    assert request.provider_payload("tok")["apitoken"] == "tok"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+30 691 234 5678", "306912345678"),
        ("00306912345678", "306912345678"),
        ("306912345678", "306912345678"),
        ("+30-691-234-5678", "306912345678"),
        ("+357 96 123456", "35796123456"),
        ("+39 06 1234 5678", "390612345678"),
    ],
)
def test_numbers_are_normalised_to_digits_only(typed: str, expected: str) -> None:
    assert normalise(typed) == expected


@settings(deadline=None)
@given(st.integers(min_value=6900000000, max_value=6999999999))
def test_greek_mobiles_survive_every_accepted_form(national: int) -> None:
    # Given any Greek mobile number, written in each accepted form
    digits = f"30{national}"
    forms = [
        f"+{digits}",
        f"00{digits}",
        digits,
        f"+30 {str(national)[:3]} {str(national)[3:6]} {str(national)[6:]}",
    ]

    # Then all normalise to the same digits-only number
    assert {normalise(form) for form in forms} == {digits}


def test_masking_keeps_country_code_and_last_three_digits() -> None:
    assert mask("306912345678") == "30*******678"
    assert mask("35796123456") == "357*****456"
    assert mask("447911123456") == "44*******456"


def _normalise_by_full_parse(digits: str) -> str | None:
    import phonenumbers

    digits = digits.removeprefix("00")  # the international call prefix, an accepted form
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


@given(
    st.one_of(
        st.text(alphabet="0123456789", min_size=1, max_size=16),
        st.sampled_from(["30", "39", "357", "44", "1", "49", "7", "380"]).flatmap(
            lambda cc: st.text(alphabet="0123456789", min_size=6, max_size=12).map(lambda rest: cc + rest)
        ),
    )
)
@settings(max_examples=1000, deadline=None)  # no timing in tests: a loaded CI machine may be slow
def test_fast_normalisation_agrees_with_a_full_parse(digits: str) -> None:
    # Given any digit string, when normalised, then it matches phonenumbers' full parse (or both refuse)
    expected = _normalise_by_full_parse(digits)
    try:
        got: str | None = normalise(digits)
    except ValueError:
        got = None
    assert got == expected
