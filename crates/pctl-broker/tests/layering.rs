//! No two modules import each other (issue 16 §2). Read from the sources,
//! so a new `use` that closes a circle fails here, by name:
//!
//! - [`no_module_imports_another_that_imports_it`]: in every crate of the
//!   workspace, the graph "module A uses an item defined in module B" has
//!   no cycle. Paths are resolved the way rustc does for names (`crate::`,
//!   `super::`, `self::`, child modules, `use` and glob imports), through
//!   re-exports to the module that defines the item, so a facade
//!   (`pub use model::*` in `config/mod.rs`, the protocol crate's root) is
//!   not itself a dependency. A module's tests count as the module.
//! - the broker's concern files use only the shared path in
//!   `broker/mod.rs`, never each other; the config model uses neither its
//!   parser nor its cache; the broker's leaves use only each other.
//!
//! `LAYERING_DUMP=1 cargo test -p pctl-broker --test layering -- --nocapture`
//! prints every edge with the path that makes it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::Visit;

/// A module's path from its crate root (`["config", "parse"]`); the root is `[]`.
type ModPath = Vec<String>;

/// What one module (a file, or an inline `mod x { … }`) defines and uses.
#[derive(Default)]
struct Module {
    /// The file this module's code is in (inline modules: their file's).
    file: PathBuf,
    /// Whether it is a file of its own, i.e. a node of the graph.
    own_file: bool,
    /// Items defined here (types, functions, traits, constants, …).
    defs: BTreeSet<String>,
    children: BTreeSet<String>,
    /// `use a::b::c as d`: `d` → `a::b::c`.
    imports: BTreeMap<String, Vec<String>>,
    /// `use a::b::*`.
    globs: Vec<Vec<String>>,
    /// Paths its code names: private `use` declarations, paths in types,
    /// expressions and patterns, and `a::b` paths in macro bodies.
    refs: Vec<Vec<String>>,
}

/// Every module of one crate, by path.
struct Crate {
    name: String,
    src: PathBuf,
    modules: BTreeMap<ModPath, Module>,
}

/// How a path resolves: to the module itself, or to an item defined in it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Module(ModPath),
    Item(ModPath),
}

impl Crate {
    /// Read the crate rooted at `root` (`src/lib.rs`, `src/main.rs`) and
    /// every module file it declares.
    fn read(name: &str, root: &Path) -> Crate {
        let mut krate = Crate {
            name: name.to_string(),
            src: root.parent().unwrap().to_path_buf(),
            modules: BTreeMap::new(),
        };
        krate.read_file(Vec::new(), root, root.parent().unwrap().to_path_buf());
        krate
    }

    /// Read one module file; `dir` is where its child module files are.
    fn read_file(&mut self, path: ModPath, file: &Path, dir: PathBuf) {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let m = self.modules.entry(path.clone()).or_default();
        m.file = file.to_path_buf();
        m.own_file = true;
        let mut reader = Reader {
            krate: self,
            stack: vec![(path, dir)],
            file: file.to_path_buf(),
        };
        for item in &ast.items {
            reader.visit_item(item);
        }
    }

    fn module(&self, path: &[String]) -> Option<&Module> {
        self.modules.get(path)
    }

    /// The file module an (inline) module belongs to: a node of the graph.
    fn node(&self, path: &[String]) -> ModPath {
        let mut p = path.to_vec();
        while !self.module(&p).is_some_and(|m| m.own_file) {
            p.pop();
        }
        p
    }

    /// Resolve `path` as written in module `from`. `None`: not in this
    /// crate (another crate, the prelude, a local name, a generic).
    fn resolve(&self, from: &[String], path: &[String], depth: u32) -> Option<Target> {
        if depth > 32 || path.is_empty() {
            return None;
        }
        let (first, rest) = (&path[0], &path[1..]);
        match first.as_str() {
            "crate" => self.walk(Vec::new(), rest, depth),
            "self" => self.walk(from.to_vec(), rest, depth),
            "super" => {
                let mut at = from.to_vec();
                at.pop()?;
                // `super::super::x`
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    at.pop()?;
                    rest = &rest[1..];
                }
                self.walk(at, rest, depth)
            }
            // a name in scope: from's own items, children, imports, globs
            // (a block's `use` is filed under its module)
            _ => self.lookup(from, path, depth),
        }
    }

    /// `path[0]` as a name in module `at` (its items, children, imports
    /// and globs), followed down.
    fn lookup(&self, at: &[String], path: &[String], depth: u32) -> Option<Target> {
        let m = self.module(at)?;
        let first = &path[0];
        if m.children.contains(first) || m.defs.contains(first) || m.imports.contains_key(first) {
            return self.walk(at.to_vec(), path, depth);
        }
        for g in &m.globs {
            if let Some(Target::Module(g)) = self.resolve(at, g, depth + 1) {
                if let Some(t) = self.lookup(&g, path, depth + 1) {
                    return Some(t);
                }
            }
        }
        None
    }

    /// Follow `rest` down from module `at`.
    fn walk(&self, mut at: ModPath, rest: &[String], depth: u32) -> Option<Target> {
        let mut rest = rest;
        loop {
            let Some(seg) = rest.first() else {
                return Some(Target::Module(at));
            };
            let m = self.module(&at)?;
            if seg == "self" {
                rest = &rest[1..];
                continue;
            }
            if m.children.contains(seg) {
                at.push(seg.clone());
                rest = &rest[1..];
                continue;
            }
            if m.defs.contains(seg) {
                return Some(Target::Item(at));
            }
            if let Some(target) = m.imports.get(seg) {
                let mut p = target.clone();
                p.extend_from_slice(&rest[1..]);
                return self.resolve(&at, &p, depth + 1);
            }
            for g in &m.globs {
                if let Some(Target::Module(g)) = self.resolve(&at, g, depth + 1) {
                    if let Some(t) = self.lookup(&g, rest, depth + 1) {
                        return Some(t);
                    }
                }
            }
            // generated by a macro, or a variant: count it as the module's
            return Some(Target::Item(at));
        }
    }

    /// The graph: node → node it uses → one path that shows it.
    fn edges(&self) -> BTreeMap<ModPath, BTreeMap<ModPath, String>> {
        let mut edges: BTreeMap<ModPath, BTreeMap<ModPath, String>> = BTreeMap::new();
        for (path, m) in &self.modules {
            let from = self.node(path);
            edges.entry(from.clone()).or_default();
            for r in &m.refs {
                let to = match self.resolve(path, r, 0) {
                    Some(Target::Item(p)) => self.node(&p),
                    // a one-word path that names a module in code is a
                    // local variable of that name
                    Some(Target::Module(p)) if r.len() > 1 => self.node(&p),
                    _ => continue,
                };
                if to != from {
                    edges
                        .entry(from.clone())
                        .or_default()
                        .entry(to)
                        .or_insert_with(|| format!("{} names {}", self.rel(&m.file), r.join("::")));
                }
            }
        }
        edges
    }

    fn rel(&self, file: &Path) -> String {
        file.strip_prefix(&self.src)
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// Every cycle of the graph (one per strongly connected component), as
    /// "a → b → a (why, why)".
    fn cycles(&self) -> Vec<String> {
        let edges = self.edges();
        let mut out = Vec::new();
        for comp in components(&edges) {
            if comp.len() < 2 {
                continue;
            }
            // a shortest way back to comp[0] through the component
            let start = comp[0].clone();
            let mut prev: BTreeMap<ModPath, ModPath> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start.clone()]);
            let mut back = None;
            while let Some(n) = queue.pop_front() {
                for next in edges[&n].keys().filter(|k| comp.contains(k)) {
                    if *next == start {
                        back = Some(n.clone());
                        queue.clear();
                        break;
                    }
                    if !prev.contains_key(next) {
                        prev.insert(next.clone(), n.clone());
                        queue.push_back(next.clone());
                    }
                }
            }
            let mut cycle = vec![start.clone()];
            let mut n = back.unwrap();
            while n != start {
                cycle.push(n.clone());
                n = prev[&n].clone();
            }
            cycle[1..].reverse();
            cycle.push(start);
            let name = |p: &ModPath| {
                if p.is_empty() {
                    "crate".to_string()
                } else {
                    p.join("::")
                }
            };
            let why: Vec<&str> = cycle
                .windows(2)
                .map(|w| edges[&w[0]][&w[1]].as_str())
                .collect();
            let mut line = format!(
                "{}: {} ({})",
                self.name,
                cycle.iter().map(name).collect::<Vec<_>>().join(" → "),
                why.join("; ")
            );
            if comp.len() > cycle.len() - 1 {
                let all: Vec<String> = comp.iter().map(name).collect();
                line += &format!(", in a circle of {}", all.join(", "));
            }
            out.push(line);
        }
        out
    }
}

/// Strongly connected components (Tarjan), each sorted.
fn components(edges: &BTreeMap<ModPath, BTreeMap<ModPath, String>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeMap<ModPath, String>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        out: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flat_map(|e| e.keys()) {
            if !s.edges.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let l = s.low[v].min(s.low[w]);
                s.low.insert(v, l);
            } else if s.on_stack.contains(w) {
                let l = s.low[v].min(s.index[w]);
                s.low.insert(v, l);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            comp.sort();
            s.out.push(comp);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// Walks one file's syntax tree, filing what it finds under the module
/// being read (the top of `stack`).
struct Reader<'k> {
    krate: &'k mut Crate,
    /// Module path and the directory of its child module files.
    stack: Vec<(ModPath, PathBuf)>,
    file: PathBuf,
}

impl Reader<'_> {
    fn here(&mut self) -> &mut Module {
        let path = self.stack.last().unwrap().0.clone();
        self.krate.modules.entry(path).or_default()
    }

    fn def(&mut self, ident: &syn::Ident) {
        let name = ident.to_string();
        self.here().defs.insert(name);
    }

    /// Expand a `use` tree into imports (and refs, when `private`).
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, private: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, private);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                let (key, full) = if name == "self" {
                    (prefix.last().cloned().unwrap_or_default(), prefix.clone())
                } else {
                    let mut full = prefix.clone();
                    full.push(name.clone());
                    (name, full)
                };
                self.import(key, full, private);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.import(r.rename.to_string(), full, private);
            }
            syn::UseTree::Glob(_) => {
                let here = self.here();
                here.globs.push(prefix.clone());
                if private {
                    here.refs.push(prefix.clone());
                }
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t, private);
                }
            }
        }
    }

    fn import(&mut self, key: String, full: Vec<String>, private: bool) {
        let here = self.here();
        if key != "_" {
            here.imports.insert(key, full.clone());
        }
        if private {
            here.refs.push(full);
        }
    }

    /// `a::b` paths in a macro's tokens (`format!("{}", crate::x::y())`).
    fn macro_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => {
                    self.macro_tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(id) => {
                    let mut path = vec![id.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
                        {
                            path.push(next.to_string());
                            j += 3;
                        } else {
                            break;
                        }
                    }
                    // `::x` (a leading colon) is another crate's
                    let leading = i >= 1
                        && matches!(&trees[i - 1], TokenTree::Punct(p) if p.as_char() == ':');
                    if path.len() > 1 && !leading {
                        self.here().refs.push(path);
                    }
                    i = j;
                }
                _ => i += 1,
            }
        }
    }
}

impl<'ast> Visit<'ast> for Reader<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        let name = m.ident.to_string();
        self.here().children.insert(name.clone());
        let (parent, dir) = self.stack.last().unwrap().clone();
        let mut path = parent;
        path.push(name.clone());
        match &m.content {
            Some((_, items)) => {
                let file = self.file.clone();
                let child = self.krate.modules.entry(path.clone()).or_default();
                child.file = file;
                self.stack.push((path, dir.join(&name)));
                for item in items {
                    self.visit_item(item);
                }
                self.stack.pop();
            }
            None => {
                let flat = dir.join(format!("{name}.rs"));
                let (file, child_dir) = if flat.exists() {
                    (flat, dir.join(&name))
                } else {
                    (dir.join(&name).join("mod.rs"), dir.join(&name))
                };
                self.krate.read_file(path, &file, child_dir);
            }
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if u.leading_colon.is_some() {
            return;
        }
        let private = matches!(u.vis, syn::Visibility::Inherited);
        self.use_tree(&mut Vec::new(), &u.tree, private);
    }

    fn visit_item_struct(&mut self, i: &'ast syn::ItemStruct) {
        self.def(&i.ident);
        syn::visit::visit_item_struct(self, i);
    }
    fn visit_item_enum(&mut self, i: &'ast syn::ItemEnum) {
        self.def(&i.ident);
        syn::visit::visit_item_enum(self, i);
    }
    fn visit_item_union(&mut self, i: &'ast syn::ItemUnion) {
        self.def(&i.ident);
        syn::visit::visit_item_union(self, i);
    }
    fn visit_item_fn(&mut self, i: &'ast syn::ItemFn) {
        self.def(&i.sig.ident);
        syn::visit::visit_item_fn(self, i);
    }
    fn visit_item_trait(&mut self, i: &'ast syn::ItemTrait) {
        self.def(&i.ident);
        syn::visit::visit_item_trait(self, i);
    }
    fn visit_item_type(&mut self, i: &'ast syn::ItemType) {
        self.def(&i.ident);
        syn::visit::visit_item_type(self, i);
    }
    fn visit_item_const(&mut self, i: &'ast syn::ItemConst) {
        self.def(&i.ident);
        syn::visit::visit_item_const(self, i);
    }
    fn visit_item_static(&mut self, i: &'ast syn::ItemStatic) {
        self.def(&i.ident);
        syn::visit::visit_item_static(self, i);
    }
    fn visit_item_macro(&mut self, i: &'ast syn::ItemMacro) {
        if let Some(ident) = &i.ident {
            self.def(ident);
        }
        syn::visit::visit_item_macro(self, i);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() {
            let path = p.segments.iter().map(|s| s.ident.to_string()).collect();
            self.here().refs.push(path);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        self.macro_tokens(m.tokens.clone());
    }

    /// Attributes (docs, derives, cfgs) name no module of ours.
    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}
}

/// The workspace's crates: each library and binary root.
fn workspace_crates() -> Vec<Crate> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Vec::new();
    for (name, dir) in [
        ("pctl-protocol", "crates/pctl-protocol"),
        ("pctl-broker", "crates/pctl-broker"),
        ("pctl", "crates/pctl"),
        ("pctl-docgen", "crates/pctl-docgen"),
        ("loadgen", "tests/bench/loadgen"),
    ] {
        for file in ["lib.rs", "main.rs"] {
            let f = root.join(dir).join("src").join(file);
            if f.exists() {
                out.push(Crate::read(&format!("{name} ({file})"), &f));
            }
        }
    }
    out
}

#[test]
fn no_module_imports_another_that_imports_it() {
    let crates = workspace_crates();
    if std::env::var_os("LAYERING_DUMP").is_some() {
        for c in &crates {
            for (from, to) in c.edges() {
                for (t, why) in to {
                    eprintln!(
                        "{}: {} -> {} [{why}]",
                        c.name,
                        from.join("::"),
                        t.join("::")
                    );
                }
            }
        }
    }
    // the reader found the modules (a wrong root would find none)
    let count = |n: &str| {
        crates
            .iter()
            .filter(|c| c.name.starts_with(n))
            .map(|c| c.modules.values().filter(|m| m.own_file).count())
            .sum::<usize>()
    };
    assert!(count("pctl-broker (lib.rs)") > 40, "broker modules");
    assert!(count("pctl (lib.rs)") > 30, "client modules");
    assert!(count("pctl-protocol") > 8, "protocol modules");
    let cycles: Vec<String> = crates.iter().flat_map(Crate::cycles).collect();
    assert!(
        cycles.is_empty(),
        "modules that import each other (move the shared item to the module it belongs to):\n{}",
        cycles.join("\n")
    );
}

/// A crate written to a temporary directory: `files` are `(path, text)`
/// under `src/`.
fn fixture(files: &[(&str, &str)]) -> (tempfile::TempDir, Crate) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join("src").join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let krate = Crate::read("fixture", &dir.path().join("src/lib.rs"));
    (dir, krate)
}

/// The check fails on a planted circle, whichever way the names are
/// written, and names the modules.
#[test]
fn a_planted_cycle_is_found_and_named() {
    let planted: &[&[(&str, &str)]] = &[
        // `use crate::…` both ways
        &[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "use crate::b::B; pub struct A(B);"),
            ("b.rs", "use crate::a::A; pub struct B; fn f(_: A) {}"),
        ],
        // a sibling through `super::`, in a function body
        &[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "pub fn a() { super::b::b() }"),
            ("b.rs", "pub fn b() { crate::a::a() }"),
        ],
        // through a parent's glob re-export (config/mod.rs's `pub use model::*`)
        &[
            ("lib.rs", "mod c;"),
            ("c/mod.rs", "mod model; mod parse; pub use model::*;"),
            ("c/model.rs", "pub fn region() { super::parse::check() }"),
            ("c/parse.rs", "use crate::c::region; pub fn check() {}"),
        ],
        // a path inside a macro, and a test module
        &[
            ("lib.rs", "mod a; mod b;"),
            ("a.rs", "pub fn a() { println!(\"{}\", crate::b::b()) }"),
            (
                "b.rs",
                "pub fn b() {} #[cfg(test)] mod tests { use crate::a::a; }",
            ),
        ],
        // a parent that uses its child, which uses the parent
        &[
            ("lib.rs", "mod p;"),
            ("p/mod.rs", "mod k; pub struct P; fn f() { k::go() }"),
            ("p/k.rs", "use super::P; pub fn go() {}"),
        ],
    ];
    for files in planted {
        let (_dir, krate) = fixture(files);
        let cycles = krate.cycles();
        assert_eq!(cycles.len(), 1, "{files:?}: {cycles:?}");
        assert!(cycles[0].contains(" → "), "{cycles:?}");
    }
    let (_dir, krate) = fixture(planted[2]);
    let c = &krate.cycles()[0];
    assert!(
        c.contains("c::model → c::parse → c::model")
            || c.contains("c::parse → c::model → c::parse"),
        "{c}"
    );
}

/// What is not a circle: a facade that re-exports what its children
/// define while they use each other one way, a child's use of its
/// parent, a module's own tests, other crates' names.
#[test]
fn facades_and_one_way_uses_are_no_cycle() {
    let (_dir, krate) = fixture(&[
        (
            "lib.rs",
            "mod kind; mod reply; pub use kind::Kind; pub use reply::Reply; pub struct Request;",
        ),
        (
            "kind.rs",
            "use crate::Request; pub enum Kind {} impl Request { fn kind(&self) {} }",
        ),
        (
            "reply.rs",
            "use crate::{Kind, Request}; pub struct Reply; fn f(_: Request, _: Kind) { std::mem::drop(1); serde::x(); }
             #[cfg(test)] mod tests { use super::*; fn t() { let _ = Reply; } }",
        ),
    ]);
    assert_eq!(krate.cycles(), Vec::<String>::new());
    let edges = krate.edges();
    let names = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<ModPath>();
    assert!(edges[&names(&["reply"])].contains_key(&names(&["kind"])));
    assert!(edges[&names(&["reply"])].contains_key(&names(&[])));
    assert!(edges[&names(&[])].is_empty(), "{:?}", edges[&names(&[])]);
}

/// The code of a file without its comments (doc links name modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn src(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const CONCERNS: [&str; 9] = [
    "credentials",
    "discover",
    "doctor",
    "eks",
    "login",
    "rotate",
    "sso",
    "status",
    "unlock",
];

/// The broker's concern files use only the shared path in `broker/mod.rs`
/// (one way: no cycle, and none through one another either).
#[test]
fn broker_concerns_use_only_the_shared_path() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/broker");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".rs") && n != "mod.rs")
        .map(|n| n.trim_end_matches(".rs").to_string())
        .collect();
    files.sort();
    assert_eq!(files, CONCERNS, "a new file under broker/: list it here");
    let krate = Crate::read(
        "pctl-broker",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"),
    );
    let edges = krate.edges();
    for c in CONCERNS {
        let from = vec!["broker".to_string(), c.to_string()];
        for other in CONCERNS {
            let to = vec!["broker".to_string(), other.to_string()];
            assert!(
                !edges[&from].contains_key(&to),
                "broker/{c}.rs uses broker/{other}.rs: {}",
                edges[&from][&to]
            );
        }
        // and the text check the graph's resolution is checked against
        let text = code(&src(&format!("broker/{c}.rs")));
        for other in CONCERNS {
            assert!(
                !text.contains(&format!("super::{other}::")),
                "broker/{c}.rs"
            );
        }
    }
}

/// In `config/`, the model uses neither the parser nor the cache nor the
/// trust check (they build on it), and the parser does not use the cache.
#[test]
fn the_config_model_uses_neither_the_parser_nor_the_cache() {
    let krate = Crate::read(
        "pctl-broker",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"),
    );
    let edges = krate.edges();
    let m = |name: &str| vec!["config".to_string(), name.to_string()];
    for (from, to) in [
        ("model", "parse"),
        ("model", "reload"),
        ("model", "trust"),
        ("parse", "reload"),
        ("reload", "parse"),
    ] {
        assert!(
            !edges[&m(from)].contains_key(&m(to)),
            "config/{from}.rs uses config/{to}.rs: {}",
            edges[&m(from)][&m(to)]
        );
    }
    assert!(!edges[&m("model")].contains_key(&vec!["config".to_string()]));
}

/// The broker's leaves (lib.rs): the config, the clock, the audit log,
/// locked memory, text cleaning and the platform code use only each other,
/// so any layer may use them without closing a circle later.
#[test]
fn the_broker_leaves_use_only_each_other() {
    let krate = Crate::read(
        "pctl-broker",
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"),
    );
    let leaf = |p: &ModPath| {
        matches!(
            p.first().map(String::as_str),
            Some("config" | "clock" | "audit" | "secret" | "text" | "platform")
        )
    };
    for (from, to) in krate.edges() {
        if !leaf(&from) {
            continue;
        }
        for (t, why) in to {
            assert!(leaf(&t), "{} uses {}: {why}", from.join("::"), t.join("::"));
        }
    }
}
