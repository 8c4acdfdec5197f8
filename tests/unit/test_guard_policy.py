"""The destination policy: countries and kinds of number, with the defaults a Greek business wants."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from gateway import names
from gateway.guard.policy import NUMBER_TYPES, DestinationPolicy, number_kind
from gateway.settings import SettingsError, load_settings

DEFAULT = DestinationPolicy.of(names.DEFAULT_ALLOWED_COUNTRIES, names.DEFAULT_ALLOWED_NUMBER_TYPES)


def example(region: str, kind: PhoneNumberType) -> str:
    number = phonenumbers.example_number_for_type(region, kind)
    assert number is not None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


@pytest.mark.parametrize("region", ["GR", "CY"])
def test_by_default_greek_and_cypriot_mobiles_pass(region: str) -> None:
    assert DEFAULT.refusal(example(region, PhoneNumberType.MOBILE)) is None


@pytest.mark.parametrize(
    ("region", "kind"),
    [
        ("GR", PhoneNumberType.FIXED_LINE),
        ("GR", PhoneNumberType.PREMIUM_RATE),
        ("GR", PhoneNumberType.TOLL_FREE),
        ("GR", PhoneNumberType.SHARED_COST),
        ("GR", PhoneNumberType.PERSONAL_NUMBER),
        ("GR", PhoneNumberType.UAN),
        ("CY", PhoneNumberType.FIXED_LINE),
        ("CY", PhoneNumberType.PREMIUM_RATE),
        ("GB", PhoneNumberType.VOIP),
    ],
)
def test_by_default_every_other_kind_of_number_is_refused_naming_its_kind(
    region: str, kind: PhoneNumberType
) -> None:
    number = example(region, kind)
    policy = DEFAULT if region != "GB" else DestinationPolicy.of(["GB"], names.DEFAULT_ALLOWED_NUMBER_TYPES)
    refusal = policy.refusal(number)
    assert refusal is not None
    assert (refusal.rule, refusal.found) == ("number-type", NUMBER_TYPES[kind])
    error = refusal.field_error(3, policy)
    assert error.field == "destinations[3]"
    assert f"'{number}' is a {NUMBER_TYPES[kind]} number" in error.message
    assert "allowedNumberTypes" in error.message


@pytest.mark.parametrize("region", ["GB", "DE", "US", "AU", "RU", "CA"])
def test_by_default_a_mobile_of_another_country_is_refused_naming_its_country(region: str) -> None:
    refusal = DEFAULT.refusal(example(region, PhoneNumberType.MOBILE))
    assert refusal is not None
    assert (refusal.rule, refusal.found) == ("country", region)
    assert "allowedCountries" in refusal.field_error(0, DEFAULT).message


def test_a_shared_calling_code_is_told_apart_by_its_prefix() -> None:
    # +1 is the US's and Canada's: a Canadian mobile is Canada's
    policy = DestinationPolicy.of(["US"], names.NUMBER_TYPES)
    canadian = example("CA", PhoneNumberType.MOBILE)
    refusal = policy.refusal(canadian)
    assert refusal is not None
    assert refusal.found == "CA"
    assert policy.refusal(example("US", PhoneNumberType.MOBILE)) is None


def test_any_country_and_every_kind_allows_everything_and_checks_nothing() -> None:
    policy = DestinationPolicy.of(["*"], names.NUMBER_TYPES)
    assert policy.allows_everything
    assert (
        policy.refusals([example("GR", PhoneNumberType.PREMIUM_RATE), example("GB", PhoneNumberType.MOBILE)])
        == []
    )


def test_refusals_keep_the_position_of_each_destination() -> None:
    numbers = [
        example("GR", PhoneNumberType.MOBILE),
        example("GR", PhoneNumberType.FIXED_LINE),
        example("GB", PhoneNumberType.MOBILE),
    ]
    assert [index for index, _ in DEFAULT.refusals(numbers)] == [1, 2]


def test_every_kind_phonenumbers_knows_has_a_name() -> None:
    kinds = {value for name, value in vars(PhoneNumberType).items() if name.isupper()}
    assert kinds == set(NUMBER_TYPES)
    assert set(NUMBER_TYPES.values()) == set(names.NUMBER_TYPES)


@pytest.mark.parametrize(
    ("environment", "problem"),
    [
        ({names.ENV_ALLOWED_COUNTRIES: "GR,XX"}, "XX"),
        ({names.ENV_ALLOWED_COUNTRIES: " , "}, "at least one"),
        ({names.ENV_ALLOWED_NUMBER_TYPES: "mobile,landline"}, "landline"),
    ],
)
def test_a_policy_setting_that_is_no_policy_stops_the_function_naming_it(
    environment: dict[str, str], problem: str
) -> None:
    base = {names.ENV_PROVIDER_BASE_URL: "https://example.com/", names.ENV_PROVIDER_TOKEN_SECRET: "s"}
    with pytest.raises(SettingsError) as refused:
        load_settings({**base, **environment})
    assert problem in str(refused.value)
    assert next(iter(environment)) in str(refused.value)


def test_settings_read_the_policy_lists() -> None:
    base = {names.ENV_PROVIDER_BASE_URL: "https://example.com/", names.ENV_PROVIDER_TOKEN_SECRET: "s"}
    settings = load_settings(
        {**base, names.ENV_ALLOWED_COUNTRIES: "gr, cy", names.ENV_ALLOWED_NUMBER_TYPES: "mobile"}
    )
    assert settings.allowed_countries == ("GR", "CY")
    assert settings.allowed_number_types == ("mobile",)
    assert load_settings({**base, names.ENV_ALLOWED_COUNTRIES: "*"}).allowed_countries == ("*",)


def phonenumbers_kind(number: phonenumbers.PhoneNumber) -> str:
    return NUMBER_TYPES[phonenumbers.number_type(number)]


def test_every_example_number_of_every_region_gets_the_kind_phonenumbers_gives() -> None:
    # Given each region's (and each non-geographic code's) example number of each kind
    examples = [
        number
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for kind in NUMBER_TYPES
        if (number := phonenumbers.example_number_for_type(region, kind)) is not None
    ] + [
        number
        for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
        if (number := phonenumbers.example_number_for_non_geo_entity(code)) is not None
    ]
    assert len(examples) > 1000
    # Then the policy's compiled reading says what phonenumbers says, for every one
    differ = [
        (phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164), number_kind(n, r), expected)
        for n in examples
        if number_kind(n, r := phonenumbers.region_code_for_number(n)) != (expected := phonenumbers_kind(n))
    ]
    assert differ == []


EXAMPLES = [
    (number.country_code, str(number.national_number))
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    for kind in NUMBER_TYPES
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
]


@st.composite
def near_real_numbers(draw: st.DrawFn) -> str:
    """A region's example number with some digits changed, one added or one taken away: numbers on
    both sides of the patterns' edges, of every kind and length, where random digits are mostly
    of no kind at all."""
    code, national = draw(st.sampled_from(EXAMPLES))
    digits = list(national)
    for _ in range(draw(st.integers(0, 3))):
        digits[draw(st.integers(0, len(digits) - 1))] = draw(st.sampled_from("0123456789"))
    change = draw(st.sampled_from(["keep", "add", "drop"]))
    if change == "add":
        digits.insert(draw(st.integers(0, len(digits))), draw(st.sampled_from("0123456789")))
    elif change == "drop" and len(digits) > 1:
        del digits[draw(st.integers(0, len(digits) - 1))]
    return f"+{code}{''.join(digits)}"


@settings(max_examples=1000, deadline=None)
@given(
    text=st.one_of(
        near_real_numbers(),
        st.builds(
            "+{}{}".format,
            st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
            st.text("0123456789", min_size=1, max_size=17),
        ),
    )
)
def test_any_number_gets_the_kind_phonenumbers_gives(text: str) -> None:
    try:
        number = phonenumbers.parse(text)
    except phonenumbers.NumberParseException:
        return
    assert number_kind(number, phonenumbers.region_code_for_number(number)) == phonenumbers_kind(number)
