"""The HTML report in a real browser: headless Chromium opens `report.html`, the report leads
with the verdict section, and the verdict page it shows is the image the workflow drew."""

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from workflow_helpers import snakemake

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FRAGILE_RED = np.array([0xD7, 0x30, 0x27])  # the verdict page's colour for fragile


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Chromium and chromedriver (Debian: chromium chromium-driver)")
def test_the_report_leads_with_the_verdict_and_shows_it_in_a_browser(tiny_run, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    report = tmp_path / "report.html"
    result = snakemake(tiny_run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-2000:]
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1200"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    try:
        driver.get(report.as_uri())
        driver.implicitly_wait(20)
        categories = driver.execute_script("return Object.keys(categories).sort()")
        assert categories[0] == "1 Verdict" and categories[1] == "2 Claims", categories
        description = driver.find_element("xpath", "//*[contains(text(), 'What this run found comes first')]")
        assert description.is_displayed()
        driver.execute_script("app.showCategory('1 Verdict')")
        row = driver.find_element("xpath", "//tr[td[contains(., 'verdict.png')]]")
        row.find_element("xpath", ".//a").click()  # the row's first button: view the result
        shown = driver.find_element("xpath", "//img[starts-with(@src, 'data:image/png')]")
        assert shown.is_displayed() and shown.size["width"] > 400, shown.size
        screenshot = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")).astype(int)
    finally:
        driver.quit()
    near_red = (np.abs(screenshot - FRAGILE_RED).sum(axis=2) < 30).sum()
    assert near_red > 500, f"{near_red} pixels of the verdict page's fragile red on screen"
