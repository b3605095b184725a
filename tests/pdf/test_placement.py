import pytest

from stamping.placement import AnchorNotFound, Placement, PlacementError


def test_parse_anchor_forms():
    p = Placement.parse("anchor:发证机关,dx=10,dy=-2.5")
    assert p.anchor_text == "发证机关" and p.offset_mm == (10.0, -2.5) and p.page is None
    assert Placement.parse("anchor=（盖章）") == Placement(page=None, anchor_text="（盖章）")


def test_parse_coordinates_and_pages():
    p = Placement.parse("page=1,x=150,y=240")
    assert (p.page, p.x_mm, p.y_mm, p.cross_page) == (1, 150.0, 240.0, False)
    assert Placement.parse("x=1,y=2").page == 0
    assert Placement.parse("page=last,x=1,y=2").page == -1
    assert Placement.parse("cross,y=150").cross_page
    assert Placement.parse("y=150", cross_page=True).cross_page


@pytest.mark.parametrize("bad", ["", "x=1", "bogus=1", "x=a,y=2", "cross=maybe,y=1"])
def test_parse_rejects(bad):
    with pytest.raises(PlacementError):
        Placement.parse(bad)


def test_dict_round_trip_and_page_index():
    p = Placement(page=-1, x_mm=30, y_mm=40, offset_mm=(1, 2))
    assert Placement.from_dict(p.to_dict()) == p
    assert Placement.from_dict({"x_mm": 1, "y_mm": 2, "offset_x_mm": 3}).offset_mm == (3.0, 0.0)
    assert p.page_index(3) == 2
    assert Placement(page=None, anchor_text="a").page_index(3) is None
    with pytest.raises(PlacementError):
        Placement(page=5, x_mm=1, y_mm=1).page_index(3)


def test_anchor_not_found_names_file_and_text():
    err = AnchorNotFound("a.pdf", "发证机关")
    assert "a.pdf" in str(err) and "发证机关" in str(err) and isinstance(err, ValueError)
