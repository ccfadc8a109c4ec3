//! Plugin `log` records reach the host process's logger, through the host services, with the
//! plugin's name as the target; the host's level applies on the plugin side.

use std::sync::Mutex;

use integration_tests::plugins_dir;
use plughost::PluginHost;

struct Capture(Mutex<Vec<(log::Level, String, String)>>);

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push((
                record.level(),
                record.target().to_owned(),
                record.args().to_string(),
            ));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

#[test]
fn plugin_warnings_reach_the_host_logger_and_debug_stays_behind() {
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let dir = plugins_dir(&["probe"]);
    let mut host = PluginHost::new();
    host.load_dir(dir.path()).unwrap();

    let mut out = Vec::new();
    host.run_command("probe-log", &["captured-warning"], &mut out)
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "debug-enabled=false\n");

    let records = CAPTURE.0.lock().unwrap().clone();
    let ours: Vec<_> = records
        .iter()
        .filter(|(_, _, message)| message.contains("captured-warning"))
        .collect();
    assert_eq!(
        ours,
        [&(
            log::Level::Warn,
            "probe".to_owned(),
            "captured-warning".to_owned()
        )],
        "{records:?}"
    );
}
