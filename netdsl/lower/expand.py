"""Expanding layer expressions into IR nodes along a chain, the way a macro expander does:
blocks are called with values (numbers, sizes, lists, other blocks, or unevaluated layer
expressions), and each layer becomes a :mod:`netdsl.ir.graph` node with its shape, inferred as
it is added (blocks read their input's channels), so the graph comes out checked.

A block call or a labelled expression opens a new scope; when that scope ends up holding a
single unlabelled element, the element takes the scope's place (so ``conv3x3(64)`` is just a
conv, and ``fc: fc(10)`` is the module ``fc``; ``outer: (inner: x)`` stays ``outer.inner``).
``residual``, ``concat``, ``stack`` and ``aux`` open no scope: their layers are elements of
the scope they are written in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import limits
from ..errors import (
    PRELUDE,
    NetDSLError,
    Span,
    SpecArgumentError,
    SpecLimitError,
    SpecRecursionError,
    SpecShapeError,
    SpecTypeError,
    call_note,
)
from ..ir.graph import BlockCall, Graph, Node, frozen, lint
from ..ir.ops import OPS, OpRecord, Shape, Size, Symbol, describe, fmt_shape
from ..ir.shapes import infer_shape
from ..syntax import tree as ast
from .binder import argument_span, bind_names, bind_op, binding_key, keywords, span_text
from .builtins import bind
from .evaluate import evaluate, resolve, truth
from .naming import Context, PendingNode, Scope, check_label, enter, label_span, module_paths
from .values import (
    BlockValue,
    Builtin,
    Env,
    Function,
    NetworkValue,
    TensorValue,
    Thunk,
    bind_tensor,
    named_tensors,
    tensor_scope,
)
from .values import name_span as _name_span


class Lowerer:
    """Expands one network into a flat list of nodes."""

    def __init__(self, prelude: Env):
        self.nodes: list[PendingNode] = []
        self.aux: list[int] = []
        self.steps = 0  # expressions expanded, layers or not (limits.MAX_STEPS)
        self.prelude = prelude  # builtins add the prelude's blocks, never the caller's
        # each block body's `(name = ...)` tensors, found once per definition and compile (a
        # block is called many times); trees hash by identity, and the dict dies with the
        # compile, so an editor's re-parsed trees are never kept
        self._tensors: dict[ast.Node, list[ast.Assign]] = {}
        # op calls bound once per distinct argument values, and their shapes once per input
        # shape: ResNet-152 binds conv1x1(256, bias=false) 36 times (see bind_layer)
        self._bindings: dict[tuple, Mapping[str, object]] = {}
        self._shapes: dict[tuple, Shape] = {}
        self._shared: set[int] = set()  # ids of the stored bindings (alive as long as self)
        self._labels: dict[ast.Label, tuple[Span, tuple[str, ...], str]] = {}

    def block_tensors(self, body: ast.Node) -> list[ast.Assign]:
        """:func:`named_tensors` of a statement of a block's body, cached for this compile."""
        found = self._tensors.get(body)
        if found is None:
            found = self._tensors[body] = named_tensors(body)
        return found

    def bind_layer(self, op: OpRecord, args, kwargs, call: ast.Node) -> Mapping[str, object]:
        """:func:`bind_op`'s attributes, shared read-only by every call of ``op`` with the same
        argument values (a binding that fails is never stored: each call reports its own)."""
        # a layer without arguments (relu, bn) has the key binding_key gives, without its work
        key = (op.name, (), ()) if not args and not kwargs else binding_key(op, args, kwargs)
        if key is None:
            return bind_op(op, args, kwargs, call)
        attrs = self._bindings.get(key)
        if attrs is None:
            attrs = self._bindings[key] = frozen(bind_op(op, args, kwargs, call))
            self._shared.add(id(attrs))
        return attrs

    def add(self, op: str, inputs: list[int], attrs: Mapping[str, object], span: Span | None,
            ctx: Context | None, element: bool = True,
            where: Callable[[str], Span | None] | None = None) -> int:
        if len(self.nodes) >= limits.MAX_NODES:
            raise SpecLimitError(f"network expands to more than {limits.MAX_NODES:,} layers", span)
        if span is not None and span.source.filename == PRELUDE and ctx is not None:
            # point at the user's call of a prelude block, not at the prelude's text
            span = next((s for s in reversed(ctx.trace) if s.source.filename != PRELUDE),
                        span)
        # the shape now, so blocks can read their input's width and `project` is decided once;
        # notes for the block calls are added as the error leaves each call (call_block)
        ins = [self.nodes[i].shape for i in inputs]
        # a shared binding's shape depends on its input shapes only (and a misfit is never
        # stored, so each misfit is reported where it happens)
        key = (op, id(attrs), *ins) if id(attrs) in self._shared else None
        shape = self._shapes.get(key) if key is not None else None
        if shape is None:
            shape = infer_shape(op, attrs, ins, span, where=where)
            if key is not None:
                self._shapes[key] = shape
        node = PendingNode(len(self.nodes), op, tuple(inputs), attrs, span,
                        ctx.trace if ctx else (), shape, ctx.scope if ctx else None)
        self.nodes.append(node)
        if element and ctx is not None:
            ctx.scope.adopt(node, None)
        return node.id

    def scoped(self, label: str | None, ctx: Context, lower: Callable[[Context], int],
               where: Span | None = None, origin: tuple | None = None) -> int:
        """Lowers into a fresh scope, then files it under ``label`` (``where`` wrote it).

        A scope holding a single unlabelled element is replaced by it: ``fc: fc(10)`` is the
        module ``fc`` and ``conv3x3(64)`` a conv, but ``outer: (inner: x)`` is ``outer.inner``."""
        child = Scope(None, origin)
        out = lower(Context(child, ctx.trace, ctx.blocks, ctx.project_target))
        _file(child, label, ctx.scope, where)
        return out

    def lower(self, node: ast.Node, env: Env, x: int, ctx: Context) -> int:
        # every expansion counts, also one that adds no layer (identity, an empty stack), so
        # work is bounded even where the layer limit is never reached
        self.steps += 1
        if self.steps > limits.MAX_STEPS:
            raise SpecLimitError(f"network takes more than {limits.MAX_STEPS:,} expansion steps",
                                 node.span)
        form = _FORMS.get(type(node))  # one lookup, not a chain of isinstance tests
        if form is not None:
            return form(self, node, env, x, ctx)
        if isinstance(node, ast.Keyed):
            raise SpecTypeError("a branch like '3x3: ...' is only meaningful inside inception()",
                                node.span)
        value = evaluate(node, env)
        raise SpecTypeError(f"expected a layer, found {describe(value)}", node.span)

    def _chain(self, node: ast.Chain, env: Env, x: int, ctx: Context) -> int:
        for item in node.items:
            x = self.lower(item, env, x, ctx)
        return x

    def _lines(self, node: ast.Lines, env: Env, x: int, ctx: Context) -> int:
        """A block of several lines, with its own tensor names."""
        scope = tensor_scope(node.items, env, self.block_tensors)
        for line in node.items:
            value = line.value if isinstance(line, ast.Assign) else line
            x = self.lower(value, scope, x, ctx)
            if isinstance(line, ast.Assign):
                scope.names[line.name] = TensorValue(x)
        return x

    def _label(self, node: ast.Label, env: Env, x: int, ctx: Context) -> int:
        label = self._labels.get(node)
        if label is None:  # checked once per label written, however often its block runs
            where = label_span(node)
            check_label(node.name, where, path=True)
            *path, leaf = node.name.split(".")
            label = self._labels[node] = where, tuple(path), leaf
        where, path, leaf = label
        inner = Context(enter(ctx.scope, path, where), ctx.trace, ctx.blocks,
                        ctx.project_target) if path else ctx
        return self.scoped(leaf, inner, lambda c: self.lower(node.body, env, x, c), where)

    def _assign(self, node: ast.Assign, env: Env, x: int, ctx: Context) -> int:
        """``(c2 = layer1: ...)``: a tensor named mid-chain."""
        x = self.lower(node.value, env, x, ctx)
        bind_tensor(env, node, x)
        return x

    def _cond(self, node: ast.Cond, env: Env, x: int, ctx: Context) -> int:
        branch = node.then if truth(node.test, env) else node.otherwise
        return self.lower(branch, env, x, ctx)

    def _call(self, node: ast.Call, env: Env, x: int, ctx: Context) -> int:
        callee = evaluate(node.func, env)
        if isinstance(callee, Builtin):
            return self.builtin(callee, node, env, x, ctx)
        if isinstance(callee, Function):  # `-> round(c / 2) ->`: a number, not a layer
            raise SpecTypeError(f"expected a layer, found {describe(evaluate(node, env))}",
                                node.span)
        args = [(evaluate(a, env), a.span) for a in node.args]
        return self.apply(callee, args, keywords(node, env), node, env, x, ctx)

    def _ref(self, node: ast.Ref, env: Env, x: int, ctx: Context) -> int:
        return self.use(resolve(node, env), node, env, x, ctx)

    def use(self, value: object, ref: ast.Node, env: Env, x: int, ctx: Context) -> int:
        """A bare name in a chain: a layer with default arguments, or a layer-valued name."""
        if isinstance(value, Thunk):
            return self.lower(value.node, value.env, x, ctx)
        if type(value) is BlockValue:  # the common case, without apply's tests
            return self.call_block(value, [], {}, ref, x, ctx)
        if isinstance(value, _LAYERS):  # before `==`, which a dataclass answers in Python
            return self.apply(value, [], {}, ref, env, x, ctx)
        if value == IDENTITY:
            return x
        if isinstance(value, TensorValue):  # a named tensor: the chain goes on from it
            return value.node
        if value == PROJECT:
            if ctx.project_target is None:
                raise SpecTypeError("'project' is only meaningful as a residual shortcut",
                                    ref.span)
            return self.project(x, ctx.project_target, ref, ctx)
        raise SpecTypeError(f"expected a layer, found {describe(value)}", ref.span)

    def builtin(self, callee: Builtin, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
        """A builtin's call, bound by its declared signature like any other call."""
        return callee.handler(self, bind(callee.name, callee.signature, call), call, env, x, ctx)

    def project(self, x: int, target: int, ref: ast.Node, ctx: Context) -> int:
        """``shortcut=project``: nothing where the residual body keeps the shape, else a
        strided 1x1 convolution without bias and a batch norm (He et al. 2016, option B;
        torchvision's ``downsample``). Decided here, once: the graph holds real nodes."""
        given, wanted = self.nodes[x].shape, self.nodes[target].shape
        stride = projection_stride(given, wanted, ref.span)
        if stride is None:
            return x
        conv = self.bind_layer(OPS["conv"], [(wanted[0], ref.span), (Size((1, 1)), ref.span)],
                               {"stride": (Size(stride), ref.span, None),
                                "bias": (False, ref.span, None)}, ref)
        bn = self.bind_layer(OPS["bn"], [], {}, ref)

        def conv_bn(c: Context) -> int:
            return self.add("bn", [self.add("conv", [x], conv, ref.span, c)], bn, ref.span, c)
        return self.scoped(None, ctx, conv_bn)

    def apply(self, callee, args, kwargs, call: ast.Node, env: Env, x: int, ctx: Context) -> int:
        if isinstance(callee, OpRecord):  # a misfit of its arguments points at the one at fault
            return self.add(callee.name, [x], self.bind_layer(callee, args, kwargs, call),
                            call.span, ctx,
                            where=lambda name: argument_span(callee, args, kwargs, name))
        if isinstance(callee, BlockValue):
            return self.call_block(callee, args, kwargs, call, x, ctx)
        if isinstance(callee, Builtin):
            return self.builtin(callee, call, env, x, ctx)
        if isinstance(callee, NetworkValue):
            raise SpecTypeError(f"{describe(callee)} cannot be used as a layer; write its layers "
                                "as a block instead", call.span)
        raise SpecTypeError(f"{describe(callee)} cannot be called", call.span)

    def call_block(self, block: BlockValue, args, kwargs, call: ast.Node, x: int,
                   ctx: Context) -> int:
        definition = block.definition
        if definition in ctx.blocks and any(  # not twice(twice(x)): that is a layer argument
                _inside(call.span, b.span) for b in ctx.blocks[ctx.blocks.index(definition):]):
            cycle = " -> ".join(b.name for b in (*ctx.blocks[ctx.blocks.index(definition):],
                                                 definition))
            raise SpecRecursionError(f"block '{definition.name}' calls itself ({cycle})",
                                     call.span)
        if len(ctx.blocks) >= limits.MAX_BLOCK_DEPTH:
            raise SpecLimitError(f"blocks nested more than {limits.MAX_BLOCK_DEPTH} deep", call.span)
        params = definition.params
        values = bind_names(definition.name, [p.name for p in params], args, kwargs, call) \
            if params or args or kwargs else {}
        # what the block is applied to, readable in its body and defaults, where a parameter
        # of the same name wins (it is bound after them): DenseNet's transition halves
        # `in_channels` (Huang et al. 2017)
        shape = self.nodes[x].shape
        local = Env({"in_channels": shape[0], "in_shape": Size(shape)}, block.env)
        for p in params:
            if p.name not in values and p.default is None:
                name_at = _name_span(definition.span, definition.name)
                raise SpecArgumentError(f"{definition.name} needs a value for '{p.name}'",
                                        call.span, notes=(f"block {definition.name} is defined "
                                                          f"at {span_text(name_at)}",))
        trace, blocks = (*ctx.trace, call.span), (*ctx.blocks, definition)
        try:
            for p in params:
                if p.name in values:
                    local.names[p.name] = values[p.name][0]
                else:
                    local.names[p.name] = evaluate(p.default, local)
            # the parameters' scope, before the body's tensor names open a child of it; the
            # arguments are read from it only if the call's scope survives (_block_calls)
            origin = None if definition.inline else (definition, shape[0], local)
            body = definition.body
            if not isinstance(body, ast.Lines) and self.block_tensors(body):  # fresh per call
                local = tensor_scope((body,), local, self.block_tensors)
            if definition.inline:
                return self.lower(body, local, x, Context(ctx.scope, trace, blocks,
                                                          ctx.project_target))
            # what scoped does, without its closure (a block call is the hot path)
            child = Scope(None, origin)
            out = self.lower(body, local, x, Context(child, trace, blocks, ctx.project_target))
            _file(child, None, ctx.scope, None)
            return out
        except NetDSLError as error:  # say which call of the block it happened in
            user_call = call.span.source.filename != PRELUDE
            raise error.within(call_note(call.span, definition.name) if user_call else None,
                               call.span) from None

    def graph(self, name: str, output: int, init, params, filename: str,
              outputs: tuple[tuple[str, int], ...] = ()) -> Graph:
        names, scopes = module_paths(self.nodes)
        nodes = tuple(Node(p.id, p.op, p.inputs, p.attrs if id(p.attrs) in self._shared
                           else frozen(p.attrs), name if OPS[p.op].is_named else None, p.span,
                           p.trace, p.shape) for p, name in zip(self.nodes, names, strict=True))
        calls = _block_calls(self.nodes)
        if outputs:  # the main output is the first named one (its shape is the summary's)
            output = outputs[0][1]
        graph = Graph(name, nodes, output, tuple(self.aux), init, frozen(params), filename,
                      checked=True, outputs=outputs, scopes=scopes, calls=calls)
        lint(graph)
        return graph


IDENTITY, PROJECT = Symbol("identity"), Symbol("project")
_LAYERS = (OpRecord, BlockValue, Builtin)  # values a bare name applies, with no arguments
# the layer forms `lower` expands, by their exact syntax-tree class
_FORMS: dict[type, Callable] = {
    ast.Chain: Lowerer._chain, ast.Lines: Lowerer._lines, ast.Label: Lowerer._label,
    ast.Assign: Lowerer._assign, ast.Cond: Lowerer._cond, ast.Call: Lowerer._call,
    ast.Ref: Lowerer._ref,
}


def _file(child: Scope, label: str | None, scope: Scope, where: Span | None) -> None:
    """Files a finished child scope in ``scope`` under ``label`` (see Lowerer.scoped)."""
    # a labelled single element keeps its label: `outer: (inner: x)` is outer.inner, and
    # an unlabelled block holding one labelled layer keeps it as its child (MobileNetV2)
    if len(child.elements) == 1 and not child.elements[0].labelled:
        scope.adopt(child.elements[0], label, where)
        child.merged = scope
    elif child.elements:
        scope.adopt(child, label, where)
    else:
        child.merged = scope


def _plain_args(in_channels: int, definition: ast.BlockDef, local: Env) -> tuple:
    """A block call's arguments that are plain data (numbers, sizes, flags, names), with
    the channels it was applied to first; blocks and layers passed as values are left out."""
    args = [("in_channels", in_channels)]
    for p in definition.params:
        value = local.names.get(p.name)
        if _is_plain(value):
            args.append((p.name, tuple(value) if isinstance(value, tuple | list) else value))
    return tuple(args)


def _is_plain(value: object) -> bool:
    if isinstance(value, tuple | list):
        return all(map(_is_plain, value))
    return isinstance(value, bool | int | float | str)


def _block_calls(nodes: list[PendingNode]) -> tuple[BlockCall, ...]:
    """Every container a block call made, by its module path, outermost first."""
    seen: dict[int, BlockCall] = {}
    for node in nodes:
        scope = node.parent
        while scope is not None and scope.parent is not None and id(scope) not in seen:
            if scope.origin is not None:
                definition, in_channels, env = scope.origin
                seen[id(scope)] = BlockCall(scope.path(), definition.name,
                                            _plain_args(in_channels, definition, env))
            else:
                seen[id(scope)] = None  # type: ignore[assignment]
            scope = scope.parent
    return tuple(sorted((c for c in seen.values() if c is not None),
                        key=lambda c: (c.path.count("."), c.path)))


def projection_stride(given: Shape, wanted: Shape, span: Span) -> tuple[int, int] | None:
    """The stride of the 1x1 convolution that maps ``given`` onto ``wanted`` (None where they
    already agree); a SpecShapeError where no strided 1x1 convolution can."""
    if given == wanted:
        return None
    problem = f"no strided 1x1 convolution takes {fmt_shape(given)} to {fmt_shape(wanted)}"
    if len(given) != 3 or len(wanted) != 3:
        raise SpecShapeError(problem, span, expected=fmt_shape(wanted), found=fmt_shape(given))
    stride = []
    for g, w in zip(given[1:], wanted[1:], strict=True):
        # the least s with (g - 1) // s + 1 == w, without trying every s up to g (g may be huge)
        least = (g - 1) // w + 1 if w > 1 else max(g, 1)
        if not (1 <= least <= g and (g - 1) // least + 1 == w):
            raise SpecShapeError(problem, span, expected=fmt_shape(wanted),
                                 found=fmt_shape(given))
        stride.append(least)
    return (stride[0], stride[1])


def _inside(span: Span, outer: Span) -> bool:
    return span.source is outer.source and (outer.line, outer.column) <= (span.line, span.column) \
        and (span.end_line, span.end_column) <= (outer.end_line, outer.end_column)
