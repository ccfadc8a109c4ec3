//! The order in which plugins are initialised: providers of interfaces before their users
//! (ABI 1.3's `provides` and `requires`), otherwise file-name order.

use crate::error::LoadErrorKind;
use crate::InterfaceVersion;

/// A plugin about to be initialised, as the ordering sees it.
pub(crate) struct Node<'a> {
    pub(crate) name: &'a str,
    pub(crate) provides: &'a [InterfaceVersion],
    pub(crate) requires: &'a [InterfaceVersion],
}

/// Whether `offer` (provided) satisfies `need` (required).
fn satisfies(offer: &InterfaceVersion, need: &InterfaceVersion) -> bool {
    offer.id == need.id && offer.major == need.major && offer.minor >= need.minor
}

/// The order in which to initialise `nodes` (indices), and the nodes refused with why.
///
/// A requirement that is not optional must be met by `available` (what the application and the
/// plugins already loaded provide) or by another node that is not refused; a node whose
/// requirement nobody meets is refused, and so, in turn, are the nodes that needed only it.
/// Providers come before their users; ties keep the nodes' order (file-name order). Nodes in a
/// cycle of requirements are refused naming the cycle (optional requirements are dropped first
/// to break a cycle).
pub(crate) fn init_order(
    nodes: &[Node<'_>],
    available: impl Fn(&InterfaceVersion) -> bool,
) -> (Vec<usize>, Vec<(usize, LoadErrorKind)>) {
    let n = nodes.len();
    let mut refused: Vec<(usize, LoadErrorKind)> = Vec::new();
    let mut alive = vec![true; n];
    // Refuse unmet requirements until nothing changes: a refused provider can leave others unmet.
    loop {
        let mut changed = false;
        for u in 0..n {
            if !alive[u] {
                continue;
            }
            let unmet = nodes[u].requires.iter().find(|need| {
                !need.optional
                    && !available(need)
                    && !(0..n).any(|p| {
                        p != u && alive[p] && nodes[p].provides.iter().any(|o| satisfies(o, need))
                    })
            });
            if let Some(need) = unmet {
                let found: Vec<String> = nodes
                    .iter()
                    .flat_map(|node| node.provides.iter())
                    .filter(|o| o.id == need.id)
                    .map(ToString::to_string)
                    .collect();
                refused.push((
                    u,
                    LoadErrorKind::MissingInterface {
                        required: need.clone(),
                        found: (!found.is_empty()).then(|| found.join(", ")),
                    },
                ));
                alive[u] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Edges provider -> user among the nodes left, for requirements not already available.
    // `edges[u]` lists (provider, optional).
    let mut edges: Vec<Vec<(usize, bool)>> = vec![Vec::new(); n];
    for u in (0..n).filter(|&u| alive[u]) {
        for need in nodes[u].requires {
            if available(need) {
                continue;
            }
            for p in (0..n).filter(|&p| p != u && alive[p]) {
                if nodes[p].provides.iter().any(|o| satisfies(o, need)) {
                    edges[u].push((p, need.optional));
                }
            }
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    let mut optional_dropped = false;
    loop {
        // The first node (in file-name order) whose providers are all initialised.
        let next = (0..n)
            .find(|&u| alive[u] && !done[u] && edges[u].iter().all(|&(p, _)| done[p] || !alive[p]));
        match next {
            Some(u) => {
                done[u] = true;
                order.push(u);
            }
            None if !optional_dropped => {
                // Stuck: break cycles through optional requirements first.
                optional_dropped = true;
                for list in &mut edges {
                    list.retain(|&(_, optional)| !optional);
                }
            }
            None => break,
        }
    }
    for u in (0..n).filter(|&u| alive[u] && !done[u]) {
        refused.push((
            u,
            LoadErrorKind::InterfaceCycle {
                cycle: describe_cycle(nodes, &edges, &done, u),
            },
        ));
    }
    refused.sort_by_key(|(u, _)| *u);
    (order, refused)
}

/// A cycle reachable from `start` by following requirements among the nodes not done, as
/// `a requires b.api 1.0 (b), b requires a.api 1.0 (a)`.
fn describe_cycle(
    nodes: &[Node<'_>],
    edges: &[Vec<(usize, bool)>],
    done: &[bool],
    start: usize,
) -> String {
    let mut path = vec![start];
    let mut u = start;
    loop {
        let Some(&(p, _)) = edges[u].iter().find(|&&(p, _)| !done[p]) else {
            return format!(
                "{} waits for a provider that cannot start",
                nodes[start].name
            );
        };
        if let Some(at) = path.iter().position(|&x| x == p) {
            path.push(p);
            let cycle = &path[at..];
            return cycle
                .windows(2)
                .map(|pair| {
                    let (user, provider) = (pair[0], pair[1]);
                    let need = nodes[user]
                        .requires
                        .iter()
                        .find(|need| nodes[provider].provides.iter().any(|o| satisfies(o, need)))
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    format!(
                        "{} requires {need} ({})",
                        nodes[user].name, nodes[provider].name
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
        path.push(p);
        u = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, major: u16, minor: u16, optional: bool) -> InterfaceVersion {
        InterfaceVersion {
            id: id.to_owned(),
            major,
            minor,
            optional,
        }
    }

    fn order_of(nodes: &[Node<'_>]) -> (Vec<&'static str>, Vec<String>) {
        let (order, refused) = init_order(nodes, |_| false);
        let names = ["a", "b", "c", "d"];
        (
            order.into_iter().map(|i| names[i]).collect(),
            refused
                .into_iter()
                .map(|(i, why)| format!("{}: {why}", names[i]))
                .collect(),
        )
    }

    #[test]
    fn providers_first_then_file_name_order() {
        let kv = [v("kv", 1, 2, false)];
        let kv_old = [v("kv", 1, 0, false)];
        let nodes = [
            Node {
                name: "a",
                provides: &[],
                requires: &kv_old,
            },
            Node {
                name: "b",
                provides: &[],
                requires: &[],
            },
            Node {
                name: "c",
                provides: &kv,
                requires: &[],
            },
        ];
        assert_eq!(order_of(&nodes), (vec!["b", "c", "a"], vec![]));
    }

    #[test]
    fn unmet_requirements_refuse_in_cascade_and_optional_ones_do_not() {
        let kv2 = [v("kv", 2, 0, false)];
        let kv1 = [v("kv", 1, 0, false)];
        let api = [v("api", 1, 0, false)];
        let opt = [v("none", 1, 0, true)];
        let nodes = [
            Node {
                name: "a",
                provides: &api,
                requires: &kv2,
            },
            Node {
                name: "b",
                provides: &[],
                requires: &api,
            },
            Node {
                name: "c",
                provides: &kv1,
                requires: &opt,
            },
        ];
        let (order, refused) = order_of(&nodes);
        assert_eq!(order, ["c"]);
        assert_eq!(refused.len(), 2);
        assert_eq!(
            refused[0],
            "a: requires the interface kv 2.0, which nothing provides (provided: kv 1.0)"
        );
        assert!(
            refused[1].starts_with("b: requires the interface api 1.0"),
            "{refused:?}"
        );
    }

    #[test]
    fn cycles_are_refused_naming_them_unless_an_optional_edge_breaks_them() {
        let a_api = [v("a.api", 1, 0, false)];
        let b_api = [v("b.api", 1, 0, false)];
        let nodes = [
            Node {
                name: "a",
                provides: &a_api,
                requires: &b_api,
            },
            Node {
                name: "b",
                provides: &b_api,
                requires: &a_api,
            },
            Node {
                name: "c",
                provides: &[],
                requires: &[],
            },
        ];
        let (order, refused) = order_of(&nodes);
        assert_eq!(order, ["c"]);
        assert_eq!(
            refused,
            [
                "a: its required interfaces form a cycle: a requires b.api 1.0 (b), b requires a.api 1.0 (a)",
                "b: its required interfaces form a cycle: b requires a.api 1.0 (a), a requires b.api 1.0 (b)",
            ]
        );
        let b_opt = [v("b.api", 1, 0, true)];
        let nodes = [
            Node {
                name: "a",
                provides: &a_api,
                requires: &b_opt,
            },
            Node {
                name: "b",
                provides: &b_api,
                requires: &a_api,
            },
        ];
        assert_eq!(order_of(&nodes), (vec!["a", "b"], vec![]));
    }
}
