"""``raised_as`` and ``problem_responses``: the routers' shared error translation."""

from __future__ import annotations

import pytest

from pulso.api.problems import (
    BAD_ANALYTICS_QUERY,
    ApiError,
    ProblemType,
    problem_responses,
    raised_as,
)

UNKNOWN = ProblemType("unknown-thing", 404, "Unknown thing")


class QueryError(Exception):
    pass


class UnknownError(QueryError):
    pass


PROBLEMS = {QueryError: BAD_ANALYTICS_QUERY, UnknownError: UNKNOWN}


def test_an_error_of_a_listed_class_becomes_its_problem_with_the_message() -> None:
    with pytest.raises(ApiError) as caught, raised_as(PROBLEMS):
        raise QueryError("from after to")
    assert caught.value.problem is BAD_ANALYTICS_QUERY
    assert str(caught.value) == "from after to"
    assert isinstance(caught.value.__cause__, QueryError)


def test_the_most_specific_class_wins_whatever_the_mapping_order() -> None:
    with pytest.raises(ApiError) as caught, raised_as(PROBLEMS):
        raise UnknownError("no query 'x'")
    assert caught.value.problem is UNKNOWN


def test_other_errors_pass_through_untouched() -> None:
    with pytest.raises(KeyError), raised_as(PROBLEMS):
        raise KeyError("x")


def test_no_error_no_problem() -> None:
    with raised_as(PROBLEMS):
        value = 1
    assert value == 1


def test_problem_responses_lists_each_status_with_its_description() -> None:
    assert problem_responses({404: "Unknown query", 422: "Bad date"}) == {
        404: {"description": "Unknown query"},
        422: {"description": "Bad date"},
    }
