//! [`Observer`]: what an application that embeds the host sees of its plugins' log records and
//! published events.

/// Receives what plugins send to their host: log records and published events. The default
/// ([`PluginHost::new`](crate::PluginHost::new)) sends the records to the `log` facade and
/// observes no events; an application that embeds the host can route them elsewhere with
/// [`PluginHost::with_observer`](crate::PluginHost::with_observer) (a log pane, a test's
/// recorder: the mock host of `plughost-testing` is built this way).
///
/// # Thread-safety
///
/// The methods run on the plugin's thread, inside the host service the plugin called (`log`,
/// `log_max_level`, `publish`), possibly on several threads at once. A method that panics is
/// contained by the host's boundary: the plugin's call returns `PANICKED`.
pub trait Observer: Send + Sync + 'static {
    /// The most verbose level of plugin records that [`Observer::log`] receives. Plugins read it
    /// through the host service `log_max_level` and drop the records above it on their side.
    /// Default: the `log` facade's maximum level.
    fn max_level(&self) -> log::LevelFilter {
        log::max_level()
    }

    /// A log record of the plugin named `plugin`, at or below [`Observer::max_level`]. Its target
    /// is the plugin's name, or `NAME::TARGET` for another target the plugin gave. Default: to the
    /// `log` facade's logger.
    fn log(&self, plugin: &str, record: &log::Record<'_>) {
        let _ = plugin;
        let logger = log::logger();
        if logger.enabled(record.metadata()) {
            logger.log(record);
        }
    }

    /// An event that the plugin named `plugin` published, before any subscriber receives it.
    /// Not called for events the application publishes through
    /// [`PluginHost::publish`](crate::PluginHost::publish). Default: nothing.
    fn published(&self, plugin: &str, topic: &str, payload: &[u8]) {
        let _ = (plugin, topic, payload);
    }
}
