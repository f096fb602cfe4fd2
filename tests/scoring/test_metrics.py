from optprompt.scoring import accuracy, macro_f1


def test_accuracy() -> None:
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0], 2) == 0.75


def test_macro_f1_hand_computed() -> None:
    # class 0: tp=2 fp=1 fn=0 -> f1=0.8 ; class 1: tp=1 fp=0 fn=1 -> f1=2/3
    assert macro_f1([0, 1, 1, 0], [0, 1, 0, 0], 2) == (0.8 + 2 / 3) / 2


def test_macro_f1_all_one_class_is_penalised() -> None:
    assert macro_f1([0, 1, 0, 1], [0, 0, 0, 0], 2) == (2 / 3 + 0) / 2
