#!/usr/bin/env python
"""The JWST calwebb_detector1 validation notebook for NIRCam imaging, running on ramp2slope.

These are the notebook's code cells, top to bottom, with ``jwst`` replaced by ``ramp2slope`` in
the imports. What had to change, and why, is said where it happens:

* the IPython magics are gone and matplotlib uses the Agg backend; every figure is saved to
  ``figures/NN_<cell>.png`` in the working folder and closed;
* the CRDS cache cell is the notebook's with ``--crds`` (references from the CRDS cache it
  names); without it, it points ``RAMP2SLOPE_REFDIR`` at the simulated reference files;
* the download of the Mirage exposure is replaced by a simulated exposure with the same kind of
  file name (``jw98765001001_01101_00003_<detector>_uncal.fits``);
* the notebook's fixed example indexes (``sat_index = 123``, ``j_index = 10112``, ...) are taken
  modulo the number of candidates, since a small exposure has fewer of them, and its full-frame
  pixel ranges follow the exposure's size.

Every pipeline call, attribute, product file name and model method is the notebook's.

    python scripts/validation_notebook.py                      # full frame, in a temporary folder
    python scripts/validation_notebook.py --outdir nb --size 256x2048 --ngroups 8 --report
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outdir", default=None,
                        help="work here and keep the files (default: a temporary folder, deleted)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--size", default=None, help="ROWSxCOLS of a window at the detector origin")
    where.add_argument("--subarray", default=None, help="a named NIRCam subarray (e.g. SUB640)")
    parser.add_argument("--ngroups", type=int, default=10,
                        help="groups per integration (default 10; at least 6, the notebook "
                             "looks at group 5)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--crds", action="store_true",
                        help="take the references from CRDS (the notebook's CRDS cell: "
                             "CRDS_CACHE_TYPE or CRDS_PATH), not from the simulation's folder")
    parser.add_argument("--report", action="store_true",
                        help="also write the HTML validation report (ramp2slope.report)")
    args = parser.parse_args(argv)
    if args.ngroups < 6:
        parser.error("--ngroups must be at least 6: the notebook examines group 5")
    if args.size is not None:
        try:
            rows, cols = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            parser.error(f"--size must look like 256x2048 (rows x columns), not {args.size!r}")
        args.size = (rows, cols)
    return args


ARGS = parse_args(sys.argv[1:] if __name__ == "__main__" else [])

# -------------------------------------------------------------------------------------------------
# Set up Temporary Directory
# -------------------------------------------------------------------------------------------------
# ****
#
# Set this variable to False to not use the temporary directory
#
# ****
use_tempdir = ARGS.outdir is None  # the notebook's True; --outdir keeps the files instead

# Create a temporary directory to hold notebook output, and change the working directory to that directory.
from tempfile import TemporaryDirectory  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402,F401

if use_tempdir:
    data_dir = TemporaryDirectory()

    # If you have files that are in the notebook's directory, but that the notebook will need to use while
    # running, copy them into the temporary directory here.
    #
    # files = ['name_of_file']
    # for file_name in files:
    #     shutil.copy(file_name, os.path.join(data_dir.name, file_name))

    # Save original directory
    orig_dir = os.getcwd()

    # Move to new directory
    os.chdir(data_dir.name)
else:
    orig_dir = os.getcwd()
    os.makedirs(ARGS.outdir, exist_ok=True)
    os.chdir(ARGS.outdir)

# For info, print out where the script is running
print("Running in {}".format(os.getcwd()))

# -------------------------------------------------------------------------------------------------
# If Desired, set up CRDS to use a local cache
# -------------------------------------------------------------------------------------------------
# With --crds this is the notebook's own cell: the pipeline's references come from the CRDS
# cache it names (CRDS_CACHE_TYPE, a folder here; CRDS_SERVER_URL for the server), and the
# simulation's own reference folder is deleted once it is written. Without it, the reference
# folder the simulation writes (./refs) is given through RAMP2SLOPE_REFDIR.
import os  # noqa: E402,F811
if ARGS.crds:
    if 'CRDS_CACHE_TYPE' in os.environ:
        if os.environ['CRDS_CACHE_TYPE'] == 'local':
            os.environ['CRDS_PATH'] = os.path.join(os.environ['HOME'], 'crds', 'cache')
        elif os.path.isdir(os.environ['CRDS_CACHE_TYPE']):
            os.environ['CRDS_PATH'] = os.environ['CRDS_CACHE_TYPE']
    print('CRDS cache location: {}'.format(os.environ['CRDS_PATH']))
else:
    os.environ['RAMP2SLOPE_REFDIR'] = os.path.join(os.getcwd(), 'refs')
    print('Reference file folder: {}'.format(os.environ['RAMP2SLOPE_REFDIR']))

# -------------------------------------------------------------------------------------------------
# Imports
# -------------------------------------------------------------------------------------------------
# Packages that allow us to get information about objects:
# (the notebook also imports asdf, which it never uses, and requests, which only served the
# download replaced below; neither is needed here)
import copy  # noqa: E402
import os  # noqa: E402,F811
import shutil  # noqa: E402,F811

# Numpy library:
import numpy as np  # noqa: E402

# Astropy tools:
from astropy.io import fits  # noqa: E402
from astropy.utils.data import download_file  # noqa: E402,F401
from astropy.visualization import ImageNormalize, ManualInterval, LogStretch  # noqa: E402

# Set up matplotlib for plotting
import matplotlib as mpl  # noqa: E402
mpl.use('Agg')  # instead of %matplotlib inline: no display, figures are saved to files
import matplotlib.pyplot as plt  # noqa: E402

# (%config InlineBackend.print_figure_kwargs = {'bbox_inches': None} has no meaning here)
mpl.rcParams['savefig.dpi'] = 80
mpl.rcParams['figure.dpi'] = 80

# Import JWST pipeline-related modules

# List of possible data quality flags
from ramp2slope.datamodels import dqflags  # noqa: E402

# The entire calwebb_detector1 pipeline
from ramp2slope.pipeline import calwebb_detector1  # noqa: E402

# Individual steps that make up calwebb_detector1
from ramp2slope.dq_init import DQInitStep  # noqa: E402,F401
from ramp2slope.saturation import SaturationStep  # noqa: E402,F401
from ramp2slope.superbias import SuperBiasStep  # noqa: E402,F401
from ramp2slope.ipc import IPCStep  # noqa: E402,F401
from ramp2slope.refpix import RefPixStep  # noqa: E402
from ramp2slope.linearity import LinearityStep  # noqa: E402,F401
from ramp2slope.persistence import PersistenceStep  # noqa: E402
from ramp2slope.dark_current import DarkCurrentStep  # noqa: E402,F401
from ramp2slope.jump import JumpStep  # noqa: E402
from ramp2slope.ramp_fitting import RampFitStep  # noqa: E402
from ramp2slope import datamodels  # noqa: E402

FIGURES = 'figures'
_figure_count = [0]


def save_figures(name):
    """Save every open figure as figures/NN_<name>.png and close it (the notebook shows them)."""
    os.makedirs(FIGURES, exist_ok=True)
    for number in plt.get_fignums():
        _figure_count[0] += 1
        path = os.path.join(FIGURES, '{:02d}_{}.png'.format(_figure_count[0], name))
        plt.figure(number).savefig(path)
        print('Saved {}'.format(path))
    plt.close('all')


# -------------------------------------------------------------------------------------------------
# Define convenience functions and parameters
# -------------------------------------------------------------------------------------------------
def plot_jump(signal, jump_group, xpixel=None, ypixel=None, slope=None):
    """Function to plot the signal up the ramp for a
    pixel and show the location of flagged jumps.

    Parameters
    ----------
    signal : numpy.ndarray
        1D array of signal values

    jump_group : list
        List of boolean values whether a jump is present or
        not in each group

    slope : numpy.ndarray
        1D array of signal values constructed from the slope
    """
    groups = np.arange(len(signal))
    fig = plt.figure(figsize=(6, 6))
    ax = plt.subplot()  # noqa: F841

    plt.plot(groups, signal, marker='o', color='black')
    plt.plot(groups[jump_group], signal[jump_group], marker='o', color='red',
             label='Flagged Jump')

    if slope is not None:
        plt.plot(groups, slope, marker='o', color='blue', label='Data from slope')

    plt.legend(loc=2)

    plt.xlabel('Groups')
    plt.ylabel('Signal (DN)')
    fig.tight_layout()
    plt.subplots_adjust(top=0.95)

    if xpixel and ypixel:
        plt.title('Pixel ('+str(xpixel)+','+str(ypixel)+')')


def plot_jumps(signals, jump_groups, pixel_loc, slopes=None):
    """Function to plot the ramp and show the jump location
    for several pixels. For simplicity, let's force the input
    number of pixels to be a square.

    Parameters
    ----------
    signals : numpy.ndarray
        2D array (groups x pix) of signal values

    jump_groups : numpy.ndarray
        2D array containing boolean entries for each group of
        each pixel, describing where the jumps were found

    pixel_loc : list
        List of 2-tuples containing the (x, y)
        location of the pixels with the jumps

    slopes : numpy.ndarray
        2D array (groups x pix) of linear signal values
        If not None, these will be overplotted onto the
        plots of signals
    """
    num_group, num_pix = signals.shape
    root = np.sqrt(num_pix)
    if int(root + 0.5) ** 2 != num_pix:
        raise ValueError('Number of pixels input should be a square.')

    root = int(root)
    groups = np.arange(num_group)
    fig, axs = plt.subplots(root, root, figsize=(10, 10))

    for index in range(len(pixel_loc)):
        i = int(index % root)
        j = int(index / root)
        axs[i, j].plot(groups, signals[:, index], marker='o', color='black')
        j_grp = jump_groups[:, index]
        axs[i, j].plot(groups[j_grp], signals[j_grp, index],
                       marker='o', linestyle='None', color='red')

        if slopes is not None:
            axs[i, j].plot(groups, slopes[:, index], marker='o', color='blue')

        axs[i, j].set_title('Pixel ({}, {})'.format(pixel_loc[index][1], pixel_loc[index][0]))

    plt.xlabel('Groups')
    plt.ylabel('Signal (DN)')
    fig.tight_layout()


def plot_ramp(groups, signal, xpixel=None, ypixel=None, title=None):
    """Function to plot the up the ramp signal for a pixel.

    Parameters
    ----------
    groups : numpy.ndarray
        1D array of group numbers. X-axis values.

    signal : numpy.ndarray
        1D array of pixel signal values.

    xpixel : int
        X-coordinate of the pixel being plotted. Used for legend only.

    ypixel : int
        Y-coordinate of the pixel being plotted. Used for legend only.

    title : str
        String to use for the plot title
    """
    fig = plt.figure(figsize=(8, 8))
    ax = plt.subplot()  # noqa: F841
    if xpixel and ypixel:
        plt.plot(groups, signal, marker='o',
                 label='Pixel ('+str(xpixel)+','+str(ypixel)+')')
        plt.legend(loc=2)

    else:
        plt.plot(groups, signal, marker='o')

    plt.xlabel('Groups')
    plt.ylabel('Signal (DN)')
    fig.tight_layout()
    plt.subplots_adjust(left=0.15)

    if title:
        plt.title(title)


def plot_ramps(groups, signal1, signal2, label1=None, label2=None, title=None):
    """Function to plot the up the ramp signal for two pixels
    on a single plot.

    Parameters
    ----------
    groups : numpy.ndarray
        1D array of group numbers. X-axis values.

    signal1 : numpy.ndarray
        1D array of signal values for first pixel

    signal2 : numpy.ndarray
        1D array of signal values for second pixel

    label1 : str
        Label to place in the legend for pixel1

    label2 : str
        Label to place in the legend for pixel2

    title : str
        String to place in the title of the plot
    """
    fig = plt.figure(figsize=(6, 6))
    ax = plt.subplot()  # noqa: F841
    if label1:
        plt.plot(groups, signal1, marker='o', color='black', label=label1)
    else:
        plt.plot(groups, signal1, marker='o', color='black')
    if label2:
        plt.plot(groups, signal2, marker='o', color='red', label=label2)
    else:
        plt.plot(groups, signal2, marker='o', color='red')
    if label1 or label2:
        plt.legend(loc=2)

    plt.xlabel('Groups')
    plt.ylabel('Signal (DN)')
    fig.tight_layout()
    plt.subplots_adjust(left=0.15)
    plt.subplots_adjust(top=0.95)

    if title:
        plt.title(title)


def show_image(data_2d, vmin, vmax, xpixel=None, ypixel=None, title=None):
    """Function to generate a 2D, log-scaled image of the data,
    with an option to highlight a specific pixel (with a red dot).

    Parameters
    ----------
    data_2d : numpy.ndarray
        Image to be displayed

    vmin : float
        Minimum signal value to use for scaling

    vmax : float
        Maximum signal value to use for scaling

    xpixel : int
        X-coordinate of pixel to highlight

    ypixel : int
        Y-coordinate of pixel to highlight

    title : str
        String to use for the plot title
    """
    norm = ImageNormalize(data_2d, interval=ManualInterval(vmin=vmin, vmax=vmax),
                          stretch=LogStretch())
    fig = plt.figure(figsize=(8, 8))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(data_2d, origin='lower', norm=norm)

    if xpixel and ypixel:
        plt.plot(xpixel, ypixel, marker='o', color='red', label='Selected Pixel')

    fig.colorbar(im, label='DN')
    plt.xlabel('Pixel column')
    plt.ylabel('Pixel row')
    if title:
        plt.title(title)


def side_by_side(data1, data2, vmin, vmax, title1=None, title2=None, title=None):
    """Show two images side by side for easy comparison. Optionally highlight
    a given pixel with a red dot.

    Parameters
    ----------
    data1 : numpy.ndarray
        First image to be displayed

    data2 : numpy.ndarray
        Second image to be displayed

    vmin : float
        Minimum signal value to use for scaling

    vmax : float
        Maximum signal value to use for scaling

    title1 : str
        Title to use for first (left) plot

    title2 : str
        Title to use for the second (right) plot

    title : str
        String to use for the plot title
    """
    norm = ImageNormalize(data1, interval=ManualInterval(vmin=vmin, vmax=vmax),
                          stretch=LogStretch())

    fig, axes = plt.subplots(nrows=1, ncols=2, figsize=(11, 8))
    im = axes[0].imshow(data1, origin='lower', norm=norm)
    im = axes[1].imshow(data2, origin='lower', norm=norm)

    axes[0].set_xlabel('Pixel column')
    axes[0].set_ylabel('Pixel row')
    axes[1].set_xlabel('Pixel column')

    if title1:
        axes[0].set_title(title1)
    if title2:
        axes[1].set_title(title2)

    fig.subplots_adjust(right=0.8)
    cbar_ax = fig.add_axes([0.85, 0.15, 0.05, 0.7])
    fig.colorbar(im, cax=cbar_ax, label='DN')

    if title:
        fig.suptitle(title)


# -------------------------------------------------------------------------------------------------
# Loading the Data
# -------------------------------------------------------------------------------------------------
# The notebook downloads a Mirage simulation from Box. Here ramp2slope's simulator writes a
# NIRCam long-wave B exposure (the notebook's NRCB5) with its reference files and truth.
from ramp2slope.simulate import simulate_exposure  # noqa: E402


def get_simulated_files(file_list):
    """In place of get_box_files: simulate each exposure into the working folder."""
    results = []
    for program, observation, visit, exposure in file_list:
        results.append(simulate_exposure(
            os.getcwd(), size=ARGS.size, subarray=ARGS.subarray, ngroups=ARGS.ngroups,
            seed=ARGS.seed, detector='NRCBLONG', program=program, observation=observation,
            visit=visit, exposure=exposure))
    return results


simulation_list = [(98765, 1, 1, 3)]
simulations = get_simulated_files(simulation_list)
if ARGS.crds:
    shutil.rmtree('refs')   # CRDS supplies the references, not a folder

file_names = [os.path.basename(str(sim.uncal)) for sim in simulations]
print('Simulated {} with shape {}'.format(file_names[0], simulations[0].shape))

# -------------------------------------------------------------------------------------------------
# Run the entire calwebb_detector1 pipeline
# -------------------------------------------------------------------------------------------------
# Create an instance of the pipeline class
detector1 = calwebb_detector1.Detector1Pipeline()

# Set some parameters that pertain to the
# entire pipeline
detector1.save_results = True

# Set some parameters that pertain to some of
# the individual steps
detector1.refpix.use_side_ref_pixels = True
detector1.refpix.odd_even_rows = False

# Save outputs from steps to examine
detector1.dq_init.save_results = True
detector1.saturation.save_results = True
detector1.superbias.save_results = True
detector1.refpix.save_results = True
detector1.linearity.save_results = True
detector1.dark_current.save_results = True
detector1.persistence.save_results = True
detector1.jump.save_results = True
detector1.ramp_fit.save_opt = True
detector1.ramp_fit.save_results = True

# Call the run() method
run_output = detector1.run(file_names[0])

# Examine the outputs

# Generate the rate file name from the uncal file name
rate_file = file_names[0].replace('uncal.fits', 'rate.fits')
print(rate_file)

# Use getdata to quickly read in the science data from the rate file
rate_data = fits.getdata(rate_file)

# Look at the rate image
show_image(rate_data, 0.5, 10)
save_figures('rate_image')

# Generate the linear step file name from the uncal file name
linear_file = rate_file.replace('rate.fits', 'linearity.fits')

# Read in the science data from the linear file
lin_data = fits.getdata(linear_file)

# Let's look at the data in the final group of the linearized data:
show_image(lin_data[0, -1, :, :], 100, 10000)
save_figures('linearity_last_group')

# -------------------------------------------------------------------------------------------------
# The Data Quality Initialization step
# -------------------------------------------------------------------------------------------------
# # Using the run() method. Instantiate and set parameters
# dq_init_step = DQInitStep()
# dq_init_step.save_results = True

# # Call the run() method on the uncal file
# dq_init = dq_init_step.run(file_names[0])

# with datamodels.open(file_names[0].replace('uncal.fits', 'dq_init.fits')) as dq_init:
dq_init = datamodels.open(file_names[0].replace('uncal.fits', 'dq_init.fits'))
print(dq_init.info())

# Print the list of JWST bad pixel types
print(dqflags.pixel)

# Print some basic information on the number of flagged pixels
idx_pixelDQ = np.where(dq_init.pixeldq.flatten() == 0.)[0]
num_flagged = dq_init.pixeldq.size - len(idx_pixelDQ)
print('Total pixels in PIXELDQ: {}'.format(dq_init.pixeldq.size))
print('{} pixels have no flags.'.format(len(idx_pixelDQ)))
print('{} pixels ({:.2f}% of the detector) have flags.'.format(num_flagged, num_flagged / dq_init.pixeldq.size))

show_image(dq_init.pixeldq, 0, 100, title='Pixel DQ extension')
save_figures('pixeldq')

(unique, counts) = np.unique(dq_init.pixeldq, return_counts=True)
frequencies = np.asarray((unique, counts)).T

print('Number of counts for each flag: ')
print(frequencies)

# -------------------------------------------------------------------------------------------------
# The Saturation Flagging step
# -------------------------------------------------------------------------------------------------
# with datamodels.open(file_names[0].replace('uncal.fits', 'saturation.fits')) as saturation:
saturation = datamodels.open(file_names[0].replace('uncal.fits', 'saturation.fits'))
print(saturation.info())

# Find indexes of saturated pixels
saturated = np.where(saturation.groupdq & dqflags.pixel['SATURATED'] > 0)

num_sat_flags = len(saturated[0])
print(('Found {} saturated flags. This may include multiple saturated '
       'groups within a given pixel'.format(num_sat_flags)))

# Create a 4D boolean map of whether the saturation flag is present or not.
saturated = (saturation.groupdq & dqflags.pixel['SATURATED'] > 0)

# Collapse that down to a 2D map that lists the number of saturated groups
# for each pixel.
saturated_2d = np.sum(saturated[0, :, :, :], axis=0)

# Get coordinates of pixels that are saturated in some, but not all, groups.
partial_sat = np.where((saturated_2d > 0) & (saturated_2d < saturated.shape[1]))
print("{} pixels are partially saturated.".format(len(partial_sat[0])))

sat_y, sat_x = partial_sat
# The notebook's example 123, modulo the number of partially saturated pixels found here.
sat_index = 123 % len(sat_y)
y = sat_y[sat_index]
x = sat_x[sat_index]
grps = saturated[0, :, y, x]
print('Saturation flags up the ramp (0 is not saturated, 2 is saturated): {}'
      .format(saturation.groupdq[0, :, y, x]))
print('Pixel signal values up the ramp: {}'.format(saturation.data[0, :, y, x]))

# Get the science and DQ values for the pixel.
groups = np.arange(saturation.data.shape[1])
full_ramp = saturation.data[0, :, y, x]
sat_dq = saturation.groupdq[0, :, y, x].astype(bool)

# Make a copy of the science data and set all saturated groups to NaN
saturated_points = copy.deepcopy(saturation.data[0, :, y, x])
saturated_points[~sat_dq] = np.nan

# Plot the pixel's values up the ramp and denote the saturated groups
plot_ramps(groups, full_ramp, saturated_points, label1='Not Saturated',
           label2='Saturated', title='Pixel ({}, {})'.format(x, y))
save_figures('saturated_pixel')

# -------------------------------------------------------------------------------------------------
# The Superbias Subtraction step
# -------------------------------------------------------------------------------------------------
# with datamodels.open(file_names[0].replace('uncal.fits', 'superbias.fits')) as superbias:
superbias = datamodels.open(file_names[0].replace('uncal.fits', 'superbias.fits'))
print(superbias.info())

# Look at the shape of the data in the datamodel output from the step
print(superbias.data[0, 0, :, :].shape)

# Look at the data before and after superbias subtraction
side_by_side(saturation.data[0, 0, :, :], superbias.data[0, 0, :, :], vmin=11000, vmax=18000,
             title1='Before superbias subtraction', title2='After superbias subtraction')
save_figures('superbias')

# -------------------------------------------------------------------------------------------------
# The Reference Pixel Subtraction step
# -------------------------------------------------------------------------------------------------
# Use the spec attribute to print available parameters
print(RefPixStep.spec)

# For this 'partial' run, we need to turn off the 1/f correction that
# uses the reference pixels on the sides of the detector. Also, we'll
# save the output using a unique name so as not to confuse the file
# with the output where we run the entire repix subtraction step.

refpix_step_no_sidepix = RefPixStep()
refpix_step_no_sidepix.save_results = True
refpix_step_no_sidepix.output_file = 'refpix_test_no_side_pixels'

# Turn off the 1/f correction
refpix_step_no_sidepix.use_side_ref_pixels = False

# Call using the the output from the previously-run superbias step
refpix_no_sidepix = refpix_step_no_sidepix.run(superbias)

# Instantiate and set parameters
refpix_step = RefPixStep()
refpix_step.save_results = True

# Call using the saturation instance from the previously-run
# saturation step
refpix = refpix_step.run(superbias)

# The notebook zooms on rows 2030: and columns 1030:1050 of the full frame; a smaller exposure is
# zoomed on its top 18 rows and 20 central columns instead.
ny, nx = superbias.data.shape[-2:]
if (ny, nx) == (2048, 2048):
    rows, cols = slice(2030, None), slice(1030, 1050)
else:
    rows, cols = slice(ny - 18, None), slice(max(0, nx // 2 - 10), nx // 2 + 10)

# Side by side, before/after reference pixel subtraction
side_by_side(superbias.data[0, 5, rows, cols], refpix.data[0, 5, rows, cols],
             vmin=0, vmax=30000, title1='Before Refpix Subtraction',
             title2='After Refpix Subtraction')
save_figures('refpix_zoom')

# Image of the difference before/after reference pixel subtraction
show_image(superbias.data[0, 5, rows, cols] - refpix.data[0, 5, rows, cols],
           vmin=7000, vmax=16000, title='Difference: Before - After Refpix Subtraction')
save_figures('refpix_difference')

# Side by side view of the reference pixel subtraction with and without
# using the side reference pixels to subtract 1/f noise
side_by_side(refpix_no_sidepix.data[0, 5, :, :], refpix.data[0, 5, :, :],
             vmin=20, vmax=150, title1='No Side Repix Correction',
             title2='With Side Refpix Correction')
save_figures('refpix_side')

# Look at the difference image before and after the side reference
# pixels are used to subtract the 1/f noise
show_image(refpix.data[0, 5, :, :] - refpix_no_sidepix.data[0, 5, :, :],
           vmin=-10, vmax=10, title="Difference with/without using side refpix")
save_figures('refpix_side_difference')

# -------------------------------------------------------------------------------------------------
# The Linearity Correction step
# -------------------------------------------------------------------------------------------------
# with datamodels.open(file_names[0].replace('uncal.fits', 'linearity.fits')) as linearity:
linearity = datamodels.open(file_names[0].replace('uncal.fits', 'linearity.fits'))
print(linearity.info())

# Using the 3rd group, find the difference between the data before and after
# linearity correction. Find the pixels where this difference is greater than
# 20 DN, and also where the signal in the final group is over 40,000 DN.
lin_fix = linearity.data[0, 3, :, :] - refpix.data[0, 3, :, :]
well_exposed = np.where((linearity.data[0, -1, :, :] > 40000.) & (lin_fix > 20))
print('{} pixels meet the criteria above.'.format(len(well_exposed[0])))
if len(well_exposed[0]) == 0:
    # A small exposure may have no pixel that bright: take those corrected by more than 20 DN.
    well_exposed = np.where(lin_fix > 20)
    print('{} pixels are corrected by more than 20 DN in group 3.'.format(len(well_exposed[0])))

# The notebook's example 3, modulo the number of pixels found here.
index = 3 % len(well_exposed[0])
lin_pix_x, lin_pix_y = (well_exposed[1][index], well_exposed[0][index])

# Create an array of group numbers to plot against
group_nums = np.arange(linearity.data.shape[1])  # the notebook's np.arange(10) for its 10 groups

plot_ramps(group_nums, refpix.data[0, :, lin_pix_y, lin_pix_x],
           linearity.data[0, :, lin_pix_y, lin_pix_x], label1='Uncorrected', label2='Corrected',
           title='Pixel ({}, {})'.format(lin_pix_x, lin_pix_y))
save_figures('linearity_pixel')

# -------------------------------------------------------------------------------------------------
# The Persistence Correction step (skipped in the notebook)
# -------------------------------------------------------------------------------------------------
print(PersistenceStep.spec)

# -------------------------------------------------------------------------------------------------
# The Dark Current Subtraction step
# -------------------------------------------------------------------------------------------------
# with datamodels.open(file_names[0].replace('uncal.fits', 'dark_current.fits')) as dark:
dark = datamodels.open(file_names[0].replace('uncal.fits', 'dark_current.fits'))
print(dark.info())

# Look at the data before and after superbias subtraction
side_by_side(linearity.data[0, 0, :, :], dark.data[0, 0, :, :], vmin=0, vmax=500,
             title1='Before dark correction', title2='After dark correction')
save_figures('dark')

# -------------------------------------------------------------------------------------------------
# The Cosmic Ray Flagging step
# -------------------------------------------------------------------------------------------------
print(JumpStep.spec)

# with datamodels.open(file_names[0].replace('uncal.fits', 'jump.fits')) as jump:
jump = datamodels.open(file_names[0].replace('uncal.fits', 'jump.fits'))
print(jump.info())

# How many total jump flags were added? Note that some pixels
# will have more than one group flagged with a jump.
jump_flags = np.where(jump.groupdq & dqflags.pixel['JUMP_DET'] > 0)
print('{} jump flags detected.'.format(len(jump_flags[0])))

# Create a 4-dimensional map of the jump flags
jump_map = (jump.groupdq & dqflags.pixel['JUMP_DET'] > 0)

# Collapse down to a 2D map of the number of flagged jumps in each pixel
jump_map_2d = np.sum(jump_map[0, :, :, :], axis=0)

# Determine how many pixels have jump flags
jump_map_indexes = np.where(jump_map_2d > 0)
impacted_pix = np.sum(jump_map_2d > 0)
total_pix = jump_map_2d.size  # the notebook's 2048 * 2048, for the exposure's size
print(('{} pixels ({:.2f}% of the detector) have been flagged with '
      'at least one jump.'.format(impacted_pix, 100. * impacted_pix / total_pix)))

# The jump map is 4-dimensional, just like the science data
print(jump_map.shape)

# Create an array of group numbers to plot against
group_indexes = np.arange(jump_map.shape[1]).astype(int)

# Pick one pixel with a flagged jump, and find the group(s) with the jump flags
num_jumpy = len(jump_map_indexes[0])
j_index = 10112 % num_jumpy  # the notebook's 10112, modulo the pixels with jumps here
jumpy = jump_map_indexes[0][j_index]
jumpx = jump_map_indexes[1][j_index]
jump_grp = jump_map[0, :, jumpy, jumpx]
print('Jump located in group(s) {} of pixel ({}, {})'.format(group_indexes[jump_grp], jumpx, jumpy))

# Plot the signal up the ramp for this pixel
plot_jump(jump.data[0, :, jumpy, jumpx], jump_grp, xpixel=jumpx, ypixel=jumpy)
save_figures('jump_pixel')

# The notebook's indexes, modulo the number of pixels with jumps here
indexes_to_plot = [i % num_jumpy for i in [200, 401, 600, 30010, 31000, 1202, 1400, 21600, 10112]]
jump_data = np.zeros((jump.shape[1], len(indexes_to_plot)))
jump_grps = np.zeros((jump.shape[1], len(indexes_to_plot))).astype(bool)
jump_locs = []
for counter, idx in enumerate(indexes_to_plot):
    # integ, grp, y, x = jump_flags[idx]
    y = jump_map_indexes[0][idx]
    x = jump_map_indexes[1][idx]
    grp = jump_map[0, :, y, x]

    jump_data[:, counter] = jump.data[0, :, y, x]
    jump_grps[:, counter] = grp
    jump_locs.append((x, y))

plot_jumps(jump_data, jump_grps, jump_locs)
save_figures('jump_grid')

# -------------------------------------------------------------------------------------------------
# The Ramp Fitting step
# -------------------------------------------------------------------------------------------------
print(RampFitStep.spec)

ramp_fit = datamodels.open(file_names[0].replace('uncal.fits', '0_ramp_fit.fits')), datamodels.open(file_names[0].replace('uncal.fits', '1_ramp_fit.fits'))

print(type(ramp_fit))

print(type(ramp_fit[0]), type(ramp_fit[1]))

print(ramp_fit[0].shape, ramp_fit[1].shape)

# Pixel (500, 500) of the notebook, wrapped to the exposure's size
py, px = 500 % ramp_fit[0].shape[0], 500 % ramp_fit[0].shape[1]
print(ramp_fit[0].data[py, px], ramp_fit[1].data[0, py, px])

# Show the units of the ramp-fit data
print(ramp_fit[0].meta.bunit_data)

# Generate the name of the optional output file
optional_file = file_names[0].replace('uncal.fits', 'fitopt.fits')

# Open the file and examine the extensions
hdulist = fits.open(optional_file)
hdulist.info()

# Pixel (200, 200) of the notebook, wrapped to the exposure's size
py, px = 200 % ramp_fit[0].shape[0], 200 % ramp_fit[0].shape[1]
print(hdulist['YINT'].data[0, :, py, px])

intercepts = hdulist['YINT'].data[0, 0, :, :]
hdulist.close()

# Get the exposure time associated with each group
num_groups = ramp_fit[0].meta.exposure.ngroups
group_time = ramp_fit[0].meta.exposure.group_time
group_times = np.arange(num_groups) * group_time

# Reconstruct linear ramps from the slope and intercept values
lin_ramps = np.zeros((jump.shape[1], len(indexes_to_plot)))
for counter, idx in enumerate(indexes_to_plot):
    y = jump_map_indexes[0][idx]
    x = jump_map_indexes[1][idx]
    grp = jump_map[0, :, y, x]

    rate = ramp_fit[0].data[y, x]
    intercept = intercepts[y, x]
    lin_ramps[:, counter] = intercept + (rate * group_times)

# Reconstruct the linear ramp for the single pixel we showed after the jump step
lin_data = intercepts[jumpy, jumpx] + (ramp_fit[0].data[jumpy, jumpx] * group_times)

# Plot again the single pixel from the jump step, along with its
# reconstructed best-fit linear fit
plot_jump(jump.data[0, :, jumpy, jumpx], jump_grp, xpixel=jumpx,
          ypixel=jumpy, slope=lin_data)
save_figures('jump_pixel_fit')

# Plot the same as above, but for the collection of pixels
# we plotted after the jump step
plot_jumps(jump_data, jump_grps, jump_locs, slopes=lin_ramps)
save_figures('jump_grid_fit')

show_image(ramp_fit[0].data, 0, 5)
save_figures('slope_image')

scipix = ramp_fit[0].data[4:ny - 4, 4:nx - 4]  # the notebook's [4:2044, 4:2044] for a full frame
zero_pix = np.where(scipix == 0.0)
print('{} science pixels have a slope that is exactly zero.'.format(len(zero_pix[0])))
if len(zero_pix[0]) == 0:
    # The pipeline (jwst 1.x and later, and ramp2slope) now gives NaN where the notebook's
    # version gave 0: investigate those pixels instead.
    zero_pix = np.where(np.isnan(scipix))
    print('{} science pixels have a slope that is NaN.'.format(len(zero_pix[0])))

idx = 45 % len(zero_pix[0])  # the notebook's 45, modulo the pixels found here

# Add 4 to the coordinates because we stripped off the 4 columns/rows of
# refpix in the np.where statement above
y = 4 + zero_pix[0][idx]
x = 4 + zero_pix[1][idx]
print('({}, {}) has a slope of {}.'.format(x, y, scipix[y-4, x-4]))

print(scipix[y-4, x-4])

print(linearity.data[0, :, y, x])

print(linearity.groupdq[0, :, y, x])

# Print JWST bad pixel flag definitions
print(dqflags.pixel)

# -------------------------------------------------------------------------------------------------
# Beyond the notebook: the same checks, automated, as one HTML report
# -------------------------------------------------------------------------------------------------
if ARGS.report:
    from ramp2slope.report import write_report

    report = write_report(os.getcwd(), truth=str(simulations[0].truth),
                          out=os.path.join(os.getcwd(), 'report.html'))
    print('Validation report: {}'.format(report))

os.chdir(orig_dir)
print('Notebook finished.')
