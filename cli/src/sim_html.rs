//! `shale sim --html`: one self-contained page (inline CSS and script, no external assets)
//! drawing a run as a timeline: one lane per process, messages as lines between lanes,
//! faults as red bands on the lanes they hit, procedure phases on their own lane, and the
//! violations highlighted (red line at the moment they were found, listed in full below).
//!
//! Owns the page's layout. Must not: change what a run means (it only draws the events).

use shale_sim::run::{ScenarioReport, TraceEvent};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Messages drawn at most; the rest are counted (a browser stays responsive).
const MESSAGES_MAX: usize = 20_000;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON for embedding in a script element (no `</script>` can appear inside).
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .replace("</", "<\\/")
}

#[derive(serde::Serialize)]
struct Mark<'a> {
    t: u64,
    lane: usize,
    kind: &'a str,
    text: String,
}

#[derive(serde::Serialize)]
struct Msg {
    t: u64,
    a: usize,
    b: usize,
}

fn lane_name(id: u64) -> String {
    let role = match id {
        1 => "meta".to_string(),
        2..=10 => format!("master{}", id - 2),
        11..=99 => format!("node{}", id - 10),
        100 => "admin".to_string(),
        _ => format!("client{}", id - 100),
    };
    format!("n{id} {role}")
}

pub fn page(r: &ScenarioReport, events: &[TraceEvent]) -> String {
    let mut ids: BTreeSet<u64> = BTreeSet::new();
    for e in events {
        ids.extend(e.from);
        ids.extend(e.to);
        ids.extend(e.nodes.iter().copied());
    }
    let ids: Vec<u64> = ids.into_iter().collect();
    let lane = |id: u64| ids.iter().position(|x| *x == id).unwrap_or(0) + 1;
    let mut lanes: Vec<String> = vec!["procedures".into()];
    lanes.extend(ids.iter().map(|id| lane_name(*id)));
    let mut marks = Vec::new();
    let mut msgs = Vec::new();
    let mut msgs_skipped = 0usize;
    for e in events {
        match e.kind.as_str() {
            "send" => {
                if let (Some(a), Some(b)) = (e.from, e.to) {
                    if msgs.len() < MESSAGES_MAX {
                        msgs.push(Msg {
                            t: e.t,
                            a: lane(a),
                            b: lane(b),
                        });
                    } else {
                        msgs_skipped += 1;
                    }
                }
            }
            "phase" => marks.push(Mark {
                t: e.t,
                lane: 0,
                kind: "phase",
                text: e.detail.clone(),
            }),
            "fault" | "undo" | "violation" | "crash" | "restart" | "stop" => {
                let lanes_hit: Vec<usize> = if e.nodes.is_empty() {
                    vec![0]
                } else {
                    e.nodes.iter().map(|n| lane(*n)).collect()
                };
                for l in lanes_hit {
                    marks.push(Mark {
                        t: e.t,
                        lane: l,
                        kind: if e.kind == "fault" || e.kind == "undo" || e.kind == "violation" {
                            "fault"
                        } else {
                            "proc"
                        },
                        text: format!("{} {}", e.kind, e.detail),
                    });
                }
            }
            _ => {}
        }
    }
    let end = events.last().map_or(1, |e| e.t.max(1));
    let verdict = if r.passed() { "PASS" } else { "FAIL" };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{name} seed {seed}: {verdict}</title>
<style>
body{{font:13px system-ui,sans-serif;margin:12px;background:#fafafa}}
h1{{font-size:18px}} .PASS{{color:#2a7}} .FAIL{{color:#c22}}
#wrap{{overflow-x:auto;border:1px solid #ccc;background:#fff}}
.viol{{background:#fee;border-left:4px solid #c22;padding:6px;margin:6px 0;white-space:pre-wrap;font-family:monospace}}
#tip{{position:fixed;background:#333;color:#fff;padding:4px 6px;border-radius:3px;pointer-events:none;display:none;max-width:600px}}
</style></head><body>
<h1>{name} seed {seed}: <span class="{verdict}">{verdict}</span></h1>
<p>{nev} events; {nmsg} messages drawn ({skipped} more not drawn); {nfault} faults; trace hash {hash:016x}.
Zoom: <input id="zoom" type="range" min="1" max="200" value="1"> Faults are red, procedure phases and
process starts/crashes blue, messages grey; the red vertical line marks where violations were found.</p>
<div id="wrap"><svg id="tl"></svg></div><div id="tip"></div>
<h2>Violations</h2>
"#,
        name = esc(&r.scenario),
        seed = r.seed,
        nev = events.len(),
        nmsg = msgs.len(),
        skipped = msgs_skipped,
        nfault = events.iter().filter(|e| e.kind == "fault").count(),
        hash = r.trace_hash,
    );
    if r.violations.is_empty() {
        out.push_str("<p>None.</p>");
    }
    for v in &r.violations {
        let _ = write!(out, "<div class=\"viol\">{}</div>", esc(&v.to_string()));
    }
    let violation_t = events
        .iter()
        .find(|e| e.kind == "violation")
        .map_or(0, |e| e.t);
    let _ = write!(
        out,
        r#"<script>
const LANES={lanes},MARKS={marks},MSGS={msgs},END={end},VT={vt};
const svg=document.getElementById('tl'),tip=document.getElementById('tip'),NS='http://www.w3.org/2000/svg';
function el(n,a){{const e=document.createElementNS(NS,n);for(const k in a)e.setAttribute(k,a[k]);return e;}}
function draw(z){{
  svg.innerHTML='';const L=170,H=22,W=Math.max(1000,1000*z),X=t=>L+W*t/END;
  svg.setAttribute('width',L+W+20);svg.setAttribute('height',H*LANES.length+30);
  LANES.forEach((n,i)=>{{svg.appendChild(el('line',{{x1:L,x2:L+W,y1:H*i+H/2+20,y2:H*i+H/2+20,stroke:'#eee'}}));
    const t=el('text',{{x:4,y:H*i+H/2+24}});t.textContent=n;svg.appendChild(t);}});
  for(let s=0;s<=10;s++){{const t=el('text',{{x:X(END*s/10),y:12,'font-size':10}});t.textContent=(END*s/10/1e9).toFixed(1)+'s';svg.appendChild(t);}}
  const Y=l=>H*l+H/2+20;
  MSGS.forEach(m=>svg.appendChild(el('line',{{x1:X(m.t),x2:X(m.t)+2,y1:Y(m.a),y2:Y(m.b),stroke:'#bbb','stroke-width':0.5}})));
  MARKS.forEach(m=>{{const r=el('rect',{{x:X(m.t)-1.5,y:Y(m.lane)-7,width:3,height:14,fill:m.kind=='fault'?'#d22':(m.kind=='phase'?'#26c':'#48a')}});
    r.addEventListener('mousemove',e=>{{tip.style.display='block';tip.style.left=(e.clientX+10)+'px';tip.style.top=(e.clientY+10)+'px';tip.textContent=(m.t/1e9).toFixed(6)+'s '+m.text;}});
    r.addEventListener('mouseleave',()=>tip.style.display='none');svg.appendChild(r);}});
  if(VT>0)svg.appendChild(el('line',{{x1:X(VT),x2:X(VT),y1:16,y2:H*LANES.length+20,stroke:'#c22','stroke-width':2}}));
}}
document.getElementById('zoom').addEventListener('input',e=>draw(+e.target.value));draw(1);
</script></body></html>
"#,
        lanes = json(&lanes),
        marks = json(&marks),
        msgs = json(&msgs),
        end = end,
        vt = violation_t,
    );
    out
}
