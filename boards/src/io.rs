//! The pins and buses of a field device, through embedded-hal traits: a
//! status LED, an alarm line, and a temperature sensor on I2C. Drivers here
//! take any `OutputPin` or `I2c`; [`linux`] opens the real ones (GPIO
//! character device, `/dev/i2c-N`) with linux-embedded-hal, and [`fake`]
//! has recording stand-ins for tests. The runtime and the tools hold only
//! the traits' types.

use embedded_hal::digital::OutputPin;
use embedded_hal::i2c::I2c;

/// Why a pin or bus operation failed, in words (embedded-hal errors are
/// only `Debug`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError(pub String);

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IoError {}

/// An output line that means something when active: wired active-high
/// (active = high) or active-low (active = low, as for an LED to 3.3 V or
/// an open-drain alarm input). Touches the pin only when the state changes.
pub struct Line<P: OutputPin> {
    pin: P,
    what: &'static str,
    active_low: bool,
    active: Option<bool>,
}

impl<P: OutputPin> Line<P> {
    /// Takes `pin` and sets it inactive.
    pub fn new(pin: P, what: &'static str, active_low: bool) -> Result<Line<P>, IoError> {
        let mut l = Line { pin, what, active_low, active: None };
        l.set(false)?;
        Ok(l)
    }

    pub fn set(&mut self, active: bool) -> Result<(), IoError> {
        if self.active == Some(active) {
            return Ok(());
        }
        let high = active != self.active_low;
        let r = if high { self.pin.set_high() } else { self.pin.set_low() };
        r.map_err(|e| IoError(format!("{}: cannot set the line {}: {e:?}", self.what, if high { "high" } else { "low" })))?;
        self.active = Some(active);
        Ok(())
    }

    pub fn is_active(&self) -> bool {
        self.active == Some(true)
    }

    /// The pin back (tests read what it recorded).
    pub fn into_inner(self) -> P {
        self.pin
    }
}

/// The status LED: lit while the device serves a model.
pub type StatusLed<P> = Line<P>;

/// The alarm line: active while the drift monitor's verdict is at its level.
pub type AlarmLine<P> = Line<P>;

/// A temperature sensor that speaks the LM75 / TMP102 register map (and
/// their many clones: TMP75, TMP112, MCP9808 excepted): register 0 holds
/// the temperature as a big-endian two's-complement value, left-aligned,
/// in 1/16 °C steps from bit 4 (LM75 fills only the top 9 bits; the same
/// read gives its 0.5 °C steps).
pub struct TempSensor<I: I2c> {
    bus: I,
    address: u8,
}

/// The usual 7-bit address of these sensors (A0..A2 grounded).
pub const TEMP_SENSOR_ADDRESS: u8 = 0x48;

impl<I: I2c> TempSensor<I> {
    pub fn new(bus: I, address: u8) -> TempSensor<I> {
        TempSensor { bus, address }
    }

    /// Reads the temperature in °C.
    pub fn celsius(&mut self) -> Result<f64, IoError> {
        let mut b = [0u8; 2];
        self.bus
            .write_read(self.address, &[0x00], &mut b)
            .map_err(|e| IoError(format!("temperature sensor at I2C address {:#04x}: read failed: {e:?}", self.address)))?;
        Ok(decode_celsius(b))
    }

    pub fn into_inner(self) -> I {
        self.bus
    }
}

/// Register 0 of an LM75 / TMP102 as °C.
pub fn decode_celsius(b: [u8; 2]) -> f64 {
    (i16::from_be_bytes(b) >> 4) as f64 * 0.0625
}

/// `CHIP:LINE` (`/dev/gpiochip0:17`, or `gpiochip0:17`) as (chip path, line).
pub fn parse_gpio(spec: &str) -> Result<(String, u32), IoError> {
    let bad = |why: &str| IoError(format!("{spec:?}: {why}; expected CHIP:LINE, e.g. /dev/gpiochip0:17"));
    let (chip, line) = spec.rsplit_once(':').ok_or_else(|| bad("no ':'"))?;
    let line = line.parse::<u32>().map_err(|_| bad(&format!("{line:?} is not a line number")))?;
    if chip.is_empty() {
        return Err(bad("no chip"));
    }
    let chip = if chip.starts_with('/') { chip.to_string() } else { format!("/dev/{chip}") };
    Ok((chip, line))
}

/// `BUS:ADDRESS` (`/dev/i2c-1:0x48`, `i2c-1:0x48`, or `1:72`) as (bus path, 7-bit address).
pub fn parse_i2c(spec: &str) -> Result<(String, u8), IoError> {
    let bad = |why: &str| IoError(format!("{spec:?}: {why}; expected BUS:ADDRESS, e.g. /dev/i2c-1:0x48"));
    let (bus, addr) = spec.rsplit_once(':').ok_or_else(|| bad("no ':'"))?;
    let address = match addr.strip_prefix("0x").or_else(|| addr.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16),
        None => addr.parse::<u8>(),
    }
    .map_err(|_| bad(&format!("{addr:?} is not an address")))?;
    if address > 0x7f {
        return Err(bad(&format!("{address:#x} is not a 7-bit address")));
    }
    let bus = match bus {
        "" => return Err(bad("no bus")),
        b if b.starts_with('/') => b.to_string(),
        b if b.chars().all(|c| c.is_ascii_digit()) => format!("/dev/i2c-{b}"),
        b => format!("/dev/{b}"),
    };
    Ok((bus, address))
}

/// The real pins and buses of a Linux board (Jetson: the 40-pin header's
/// GPIO lines through `/dev/gpiochipN`, its I2C buses as `/dev/i2c-N`).
#[cfg(all(feature = "linux", target_os = "linux"))]
pub mod linux {
    use super::{parse_gpio, parse_i2c, IoError};
    pub use linux_embedded_hal::{CdevPin, I2cdev};

    /// Takes `CHIP:LINE` as an output for `consumer` (shown by gpioinfo).
    pub fn output(spec: &str, consumer: &str) -> Result<CdevPin, IoError> {
        use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
        let (chip, line) = parse_gpio(spec)?;
        let mut c = Chip::new(&chip).map_err(|e| IoError(format!("cannot open the GPIO chip {chip}: {e}")))?;
        let handle = c
            .get_line(line)
            .and_then(|l| l.request(LineRequestFlags::OUTPUT, 0, consumer))
            .map_err(|e| IoError(format!("cannot take line {line} of {chip} as an output: {e}")))?;
        CdevPin::new(handle).map_err(|e| IoError(format!("{spec}: {e}")))
    }

    /// Opens `BUS:ADDRESS`: the bus and the device's address on it.
    pub fn i2c(spec: &str) -> Result<(I2cdev, u8), IoError> {
        let (bus, address) = parse_i2c(spec)?;
        let dev = I2cdev::new(&bus).map_err(|e| {
            // The driver's ioctl on something that is not an adapter.
            let e = e.to_string();
            let hint = if e.contains("ENOTTY") { " (it is not an I2C adapter)" } else { "" };
            IoError(format!("cannot open the I2C bus {bus}: {e}{hint}"))
        })?;
        Ok((dev, address))
    }
}

/// Stand-ins that record what was done to them, for tests.
pub mod fake {
    use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    /// An output pin that records every level it is set to; clones share
    /// the record, so a test keeps one while the code under test owns the other.
    #[derive(Clone, Default)]
    pub struct RecordingPin {
        levels: Arc<Mutex<Vec<bool>>>,
        fail: Arc<Mutex<bool>>,
    }

    /// A failing fake's error.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct FakeError(pub &'static str);

    impl embedded_hal::digital::Error for FakeError {
        fn kind(&self) -> embedded_hal::digital::ErrorKind {
            embedded_hal::digital::ErrorKind::Other
        }
    }

    impl RecordingPin {
        /// Every level set so far (true = high).
        pub fn levels(&self) -> Vec<bool> {
            self.levels.lock().expect("pin record").clone()
        }
        /// Makes every later set fail (a line taken away, a GPIO chip gone).
        pub fn fail(&self) {
            *self.fail.lock().expect("pin record") = true;
        }
    }

    impl embedded_hal::digital::ErrorType for RecordingPin {
        type Error = FakeError;
    }

    impl embedded_hal::digital::OutputPin for RecordingPin {
        fn set_low(&mut self) -> Result<(), FakeError> {
            self.set(false)
        }
        fn set_high(&mut self) -> Result<(), FakeError> {
            self.set(true)
        }
    }

    impl RecordingPin {
        fn set(&mut self, high: bool) -> Result<(), FakeError> {
            if *self.fail.lock().expect("pin record") {
                return Err(FakeError("the line is gone"));
            }
            self.levels.lock().expect("pin record").push(high);
            Ok(())
        }
    }

    /// A device's registers: register → bytes.
    type Registers = HashMap<u8, Vec<u8>>;

    /// One I2C transfer as the fake saw it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Transfer {
        Write { address: u8, bytes: Vec<u8> },
        Read { address: u8, len: usize },
    }

    /// An I2C bus with devices that are register maps (address → register →
    /// bytes); a write sets the register pointer, a read returns the bytes
    /// at it. A device that is not there does not acknowledge. Records
    /// every transfer.
    #[derive(Clone, Default)]
    pub struct FakeI2c {
        devices: Arc<Mutex<HashMap<u8, Registers>>>,
        log: Arc<Mutex<Vec<Transfer>>>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct I2cFault(pub ErrorKind);

    impl embedded_hal::i2c::Error for I2cFault {
        fn kind(&self) -> ErrorKind {
            self.0
        }
    }

    impl FakeI2c {
        /// Puts `bytes` in register `reg` of the device at `address`.
        pub fn set_register(&self, address: u8, reg: u8, bytes: &[u8]) {
            self.devices.lock().expect("bus").entry(address).or_default().insert(reg, bytes.to_vec());
        }
        pub fn transfers(&self) -> Vec<Transfer> {
            self.log.lock().expect("bus").clone()
        }
    }

    impl ErrorType for FakeI2c {
        type Error = I2cFault;
    }

    impl I2c for FakeI2c {
        fn transaction(&mut self, address: u8, operations: &mut [Operation<'_>]) -> Result<(), I2cFault> {
            let devices = self.devices.lock().expect("bus");
            let Some(regs) = devices.get(&address) else {
                return Err(I2cFault(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)));
            };
            let mut pointer = 0u8;
            let mut log = self.log.lock().expect("bus");
            for op in operations {
                match op {
                    Operation::Write(bytes) => {
                        log.push(Transfer::Write { address, bytes: bytes.to_vec() });
                        if let Some(&p) = bytes.first() {
                            pointer = p;
                        }
                    }
                    Operation::Read(buf) => {
                        log.push(Transfer::Read { address, len: buf.len() });
                        let data = regs.get(&pointer).map(Vec::as_slice).unwrap_or(&[]);
                        for (i, b) in buf.iter_mut().enumerate() {
                            *b = data.get(i).copied().unwrap_or(0xff);
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeI2c, RecordingPin, Transfer};
    use super::*;

    #[test]
    fn lines_set_only_on_change_and_honour_active_low() {
        let rec = RecordingPin::default();
        let mut led = StatusLed::new(rec.clone(), "status LED", false).unwrap();
        led.set(true).unwrap();
        led.set(true).unwrap();
        led.set(false).unwrap();
        assert_eq!(rec.levels(), [false, true, false]);
        let rec = RecordingPin::default();
        let mut alarm = AlarmLine::new(rec.clone(), "alarm line", true).unwrap();
        alarm.set(true).unwrap();
        assert!(alarm.is_active());
        assert_eq!(rec.levels(), [true, false], "active-low: idle high, active low");
        rec.fail();
        let e = alarm.set(false).unwrap_err();
        assert!(e.0.contains("alarm line: cannot set the line high"), "{e}");
    }

    #[test]
    fn the_temperature_sensor_reads_register_0() {
        let bus = FakeI2c::default();
        // TMP102 datasheet examples: 0x1900 = 25 °C, 0xE700 = -25 °C, 0x7FF0 = 127.9375 °C.
        let mut s = TempSensor::new(bus.clone(), TEMP_SENSOR_ADDRESS);
        for (raw, want) in [([0x19, 0x00], 25.0), ([0xE7, 0x00], -25.0), ([0x7F, 0xF0], 127.9375), ([0x00, 0x10], 0.0625)] {
            bus.set_register(0x48, 0, &raw);
            assert_eq!(s.celsius().unwrap(), want);
        }
        assert_eq!(bus.transfers()[..2], [Transfer::Write { address: 0x48, bytes: vec![0] }, Transfer::Read { address: 0x48, len: 2 }]);
        let mut absent = TempSensor::new(bus, 0x49);
        let e = absent.celsius().unwrap_err();
        assert!(e.0.contains("0x49") && e.0.contains("NoAcknowledge"), "{e}");
    }

    #[test]
    fn specs_parse_with_clear_errors() {
        assert_eq!(parse_gpio("/dev/gpiochip0:17").unwrap(), ("/dev/gpiochip0".into(), 17));
        assert_eq!(parse_gpio("gpiochip1:5").unwrap(), ("/dev/gpiochip1".into(), 5));
        assert!(parse_gpio("gpiochip0").unwrap_err().0.contains("expected CHIP:LINE"));
        assert!(parse_gpio("gpiochip0:x").unwrap_err().0.contains("\"x\" is not a line number"));
        assert_eq!(parse_i2c("/dev/i2c-1:0x48").unwrap(), ("/dev/i2c-1".into(), 0x48));
        assert_eq!(parse_i2c("7:72").unwrap(), ("/dev/i2c-7".into(), 72));
        assert!(parse_i2c("i2c-1:0x80").unwrap_err().0.contains("not a 7-bit address"));
        assert!(parse_i2c("i2c-1").unwrap_err().0.contains("expected BUS:ADDRESS"));
    }
}
