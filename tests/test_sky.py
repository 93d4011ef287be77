"""The Skywriting language, run in process (no cluster): syntax of the original
scripts, semantics, located errors, and an interpreter state that pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from musketeer.frontends import skywriting as sk
from musketeer.frontends.skywriting.local import LocalHost
from musketeer.frontends.skywriting.vm import Blocked, Future

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "skywriting"


def run(text: str, **env: str):
    return sk.run_local(sk.load_text(text, "t.sky"), env)


def test_the_original_scripts_syntax_runs_unchanged():
    # written the way the original test scripts are: anonymous functions called
    # at once, lambdas, closures over globals, do-while with break, element
    # assignment that appends, `+=` appending to a list, dict keys with escapes
    script = r'''
    i = 11;
    j = i + 1;
    foo = function (x) {
        return 100 + j + x;
    };
    do {
        j = j + 1;
        if (j == 42) {
            break;
        }
    } while ((i + j) <= 100);
    k = [1, true, false, 0, "BOO!", 1, 2];
    k[2] = true;
    ns = [];
    for (yy in range(0, 5)) {
        ns[yy] = spawn(foo, [yy]);
    }
    testy = function (x) { return 100 + x; } (50);
    lesty = (lambda x, y : 100 + testy + y)(50, 3);
    hfunc = lambda x : (lambda y : x + y);
    h = hfunc(10);
    dicty = { "b\n\nad" : hfunc(100), "foo" : "bar" };
    zoo = dicty["b\n\nad"](145);
    out = [];
    for (q in range(0, 4)) {
        out += q;
    }
    starqs = [];
    for (zz in range(0, 5)) {
        starqs[zz] = (*ns[zz]) + 0;
    }
    return [j, k, testy, lesty, [h(20), h(30)], zoo, out, starqs, len(k)];
    '''
    j = 42
    assert run(script) == [j, [1, True, True, 0, "BOO!", 1, 2], 150, 253, [30, 40], 245, [0, 1, 2, 3],
                           [100 + j + y for y in range(5)], 7]


def test_nested_functions_star_len_range_and_for_over_lists():
    script = '''
    function list_builder () {
        function fortytwo () {
            return 42;
        }
        length = *spawn(fortytwo, []);
        out = [];
        for (i in range(0, length)) {
            out += i;
        }
        return out;
    }
    list = *spawn(list_builder, []);
    ret = 0;
    for (i in range(0, len(list))) {
        ret += i;
    }
    for (i in list) {
        ret = ret - i * 2;
    }
    return ret;
    '''
    assert run(script) == sum(range(42)) - 2 * sum(range(42))


@pytest.mark.parametrize("expr, value", [
    ("7 / 2", 3), ("7.0 / 2", 3.5), ("-7 / 2", -4), ("7 % 3", 1), ("-3 % 5", 2), ("2 * 3 + 4", 10),
    ("2 * (3 + 4)", 14), ('"ab" + "cd"', "abcd"), ("[1] + [2, 3]", [1, 2, 3]), ("[1] + 2", [1, 2]),
    ("1 < 2 && 2 < 3", True), ("!(1 < 2) || false", False), ("1 == 1.0", True), ("true == 1", False),
    ('"a" < "b"', True), ("null == null", True), ("[1, 2] == [1, 2]", True), ("len(\"héllo\")", 5),
    ('split("a b  c")', ["a", "b", "c"]), ('join(["a", "b"], "-")', "a-b"), ('int(" 42 ")', 42),
    ('float("2.5")', 2.5), ("str(12)", "12"), ('has_key({"a": 1}, "a")', True),
    ('get_key({"a": 1}, "b", 7)', 7), ("range(3)", [0, 1, 2]), ("range(1, 7, 2)", [1, 3, 5]),
    ("max([3, 9, 2])", 9), ("min(4, 1)", 1), ("abs(-2.5)", 2.5), ("sqrt(16)", 4.0), ("floor(2.7)", 2),
    ('keys({"x": 1, "y": 2})', ["x", "y"]), ('upper("ab")', "AB"), ('"ab" * 2', "abab"),
])
def test_operators_and_builtins(expr, value):
    assert run(f"return {expr};") == value


def test_while_continue_and_top_level_return_ends_the_script():
    script = '''
    total = 0;
    i = 0;
    while (i < 10) {
        i += 1;
        if (i % 2 == 0) {
            continue;
        }
        total += i;
    }
    return total;
    total = 1000;
    '''
    assert run(script) == 1 + 3 + 5 + 7 + 9


def test_print_writes_a_line_to_stderr(capsys):
    assert run('x = print("Hello world: " + str(1));\nreturn x;') is None
    assert capsys.readouterr().err == "Hello world: 1\n"


def test_env_holds_the_arguments():
    assert run('return [env["n"], get_key(env, "m", "none")];', n="5") == ["5", "none"]


def test_include_finds_the_standard_library_and_files_next_to_the_script(tmp_path):
    (tmp_path / "defs.sky").write_text("foo = 42;\n")
    main = tmp_path / "main.sky"
    main.write_text('include "defs.sky";\ninclude "mapreduce";\n'
                    'sq = lambda x : x * x;\n'
                    'return [foo, map(sq, [1, 2, 3]), mapreduce([1, 2, 3], lambda x : [x, 10 * x], '
                    'lambda xs : xs, 2)];\n')
    assert sk.run_local(sk.load(main)) == [42, [1, 4, 9], [[1, 2, 3], [10, 20, 30]]]


@pytest.mark.parametrize("text, line, col, message", [
    ("x = 1\nreturn x;", 2, 1, "expected ';' before 'return'"),
    ("x = (1 + ;", 1, 10, "unexpected ';'"),
    ("return 1 +\n", 1, 10, "unexpected end of script"),
    ("x = 1 @ 2;", 1, 7, "unexpected character '@'"),
    ("f(1) = 2;", 1, 1, "can only assign to a variable or an element"),
    ("return y;", 1, 8, "y is not defined"),
    ('return 1 + "a";', 1, 10, "cannot apply + to number and string"),
    ("x = [1];\nreturn x[3];", 2, 8, "index 3 out of range (length 1)"),
    ("x = [1];\nx[5] = 2;", 2, 1, "index 5 out of range"),
    ('return {"a": 1}["b"];', 1, 8, "no key 'b' in the dict"),
    ("return 1 / 0;", 1, 10, "division by zero"),
    ("f = lambda x : x;\nreturn f(1, 2);", 2, 8, "<lambda> takes 1 argument(s), got 2"),
    ("return *3;", 1, 8, "* needs a future (from spawn), got number"),
    ("return len(3);", 1, 8, "len() of number"),
    ("break;", 1, 1, "break outside a loop"),
    ('include "nowhere";', 1, 9, "include 'nowhere': no such script"),
    ("function f() { return f(); }\nreturn f();", 1, 23, "calls nested deeper than"),
    ('return exec("stdinout", {"command_line": ["true"]}, 1);', 1, 8, "runs external programs only on the workers"),
    ("x = spawn(1, []);", 1, 5, "spawn needs a function"),
    ("while (spawn(lambda : 1, [])) { }", 1, 1, "a future is not a condition"),
])
def test_errors_are_located(text, line, col, message):
    with pytest.raises(sk.SkyError) as info:
        run(text)
    err = info.value
    assert (err.loc.file, err.loc.line, err.loc.col) == ("t.sky", line, col)
    assert message in err.message
    assert "\n" not in err.message


def test_a_blocked_dereference_pickles_and_resumes_where_it_stopped():
    """`*f` of a future without a value stops the interpreter mid-expression;
    its state pickles, and given the value it finishes as if it had waited."""

    class Pending(LocalHost):
        def spawn(self, fn, args, loc):
            self.spawns += 1
            return Future(f"pending-{self.spawns}")

        def lookup(self, future):
            return False, None

    code = sk.load_text('total = 0;\nfor (i in range(3)) {\n  f = spawn(lambda x : x, [i]);\n'
                        '  total = total + 10 * *f;\n}\nreturn [total, i];', "t.sky")
    vm = sk.start(code)
    host = Pending()
    for expected in range(3):
        with pytest.raises(Blocked) as info:
            vm.run(host)
        assert info.value.future.id == f"pending-{expected + 1}"
        vm = pickle.loads(pickle.dumps(vm))  # what a continuation task receives
        vm.resume(info.value.future.id, expected + 1)
    assert vm.run(host) == [10 * (1 + 2 + 3), 2]


def test_original_small_scripts():
    hello = 'function hello(who) {\n    return "hello " + who;\n}\ngreeting = spawn(hello,["world"]);\nreturn *greeting;\n'
    assert run(hello) == "hello world"
    two = ('function a(i) {\n    foo = 400 + i;\n    return foo;\n}\nfunction b(j) {\n    bar = 500 + *j;\n'
           '    return bar;\n}\naspawn = spawn(a, [1]);\nbspawn = spawn(b, [aspawn]);\nreturn (*aspawn) + (*bspawn);')
    assert run(two) == 401 + 901
    recurse = ('function recurse_spawner (current, limit) {\n\tif (current == limit) {\n\t    return 1;\n\t} else {\n'
               '\t \tleft = *spawn(recurse_spawner, [current + 1, limit]);\n'
               '\t \tright = *spawn(recurse_spawner, [current + 1, limit]);\n\t \treturn left + right;\n\t} \n}\n'
               'return recurse_spawner(0, 8);')
    assert run(recurse) == 2 ** 8
    assert run("f = spawn(len, [[1, 2, 3]]);\nreturn *f;") == 3  # a built-in spawned as a task


def test_python_functions_are_spawned_by_module_path():
    assert run('f = spawn(python("math:hypot"), [3, 4]);\nreturn *f;') == 5.0
    assert run('return *spawn("operator:add", [spawn(lambda : 2, []), 3]);') == 5
    with pytest.raises(sk.SkyError, match="python functions run as tasks"):
        run('return python("math:hypot")(3, 4);')


def test_the_examples_parse():
    for path in sorted(EXAMPLES.glob("*.sky")):
        sk.load(path)
